package main

import "github.com/spf13/cobra"

// newEnvWebCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newEnvWebCmd() *cobra.Command {
	return &cobra.Command{Use: "web", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
