package main

import "github.com/spf13/cobra"

// newTrainQueryCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newTrainQueryCmd() *cobra.Command {
	return &cobra.Command{Use: "query", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
