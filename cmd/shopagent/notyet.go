package main

import "errors"

// errNotYet is returned by commands whose implementation has not landed yet.
var errNotYet = errors.New("this command is not implemented yet")
