package models

import (
	"os"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// newSimpleGo is simplego.New without its console line: GoMLX v0.26.0 prints "SimpleGo
// backend: parallelism set to N" on standard output whenever a configuration sets
// parallelism, as DefaultGoConfig does, so every command that trains or evaluates printed
// it (about ten times in `make demo`). Standard output points at the null device while
// simplego.New parses the configuration (microseconds, while the command sets up and
// prints nothing else); a failure to open the null device leaves the line in.
func newSimpleGo(config string) (backends.Backend, error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return simplego.New(config)
	}
	defer null.Close()
	stdout := os.Stdout
	os.Stdout = null
	defer func() { os.Stdout = stdout }()
	return simplego.New(config)
}
