package main

import "github.com/spf13/cobra"

// newServeCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newServeCmd() *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}

// newOpeCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newOpeCmd() *cobra.Command {
	return &cobra.Command{Use: "ope", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
