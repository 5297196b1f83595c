//go:build race

package models

// tokRaceEnabled reports whether the tests run with -race.
const tokRaceEnabled = true
