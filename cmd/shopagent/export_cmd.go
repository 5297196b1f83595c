package main

import "github.com/spf13/cobra"

// newExportCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newExportCmd() *cobra.Command {
	return &cobra.Command{Use: "export", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
