// Package pyport holds exact Go ports of the Python behaviour WebShop depends
// on: CPython's random.Random (MT19937 with seed, shuffle, sample, uniform),
// fuzzywuzzy's token_set_ratio with difflib's SequenceMatcher ratio, and
// Python's float formatting. Each is checked against values produced by
// CPython (testdata/). It imports nothing of the project.
package pyport
