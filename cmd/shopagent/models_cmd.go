package main

import "github.com/spf13/cobra"

// newModelsCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newModelsCmd() *cobra.Command {
	return &cobra.Command{Use: "models", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
