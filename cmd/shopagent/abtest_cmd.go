package main

import "github.com/spf13/cobra"

// newAbtestCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newAbtestCmd() *cobra.Command {
	return &cobra.Command{Use: "abtest", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}

// newExperimentCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newExperimentCmd() *cobra.Command {
	return &cobra.Command{Use: "experiment", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
