package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFilePublishesWholeFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := WriteFile(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two" {
		t.Fatalf("read %q, %v", b, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
	// A failed write publishes nothing and leaves no temporary file.
	boom := errors.New("boom")
	if err := Write(path, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	b, _ = os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if string(b) != "two" || len(entries) != 1 {
		t.Fatalf("after a failed write: content %q, %d entries", b, len(entries))
	}
}

func TestCreateTempNamesAndAbort(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "part-x.parquet"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(f.Name())
	if !IsTemp(base) {
		t.Fatalf("temporary name %s is not recognised", base)
	}
	if target, ok := TempTarget(base); !ok || target != "part-x.parquet" {
		t.Fatalf("TempTarget(%s) = %q, %v", base, target, ok)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("abort left %d entries", len(entries))
	}
	for _, name := range []string{"part-x.parquet", ".hidden", "x.tmp", ".x.tmp"} {
		if _, ok := TempTarget(name); ok {
			t.Errorf("TempTarget(%q) accepted it", name)
		}
	}
}
