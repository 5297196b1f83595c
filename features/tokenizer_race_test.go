//go:build race

package features

// tokRaceEnabled reports whether the tests run with -race.
const tokRaceEnabled = true
