package main

import "github.com/spf13/cobra"

// newTrainPGCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newTrainPGCmd() *cobra.Command {
	return &cobra.Command{Use: "pg", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}

// newTrainPPOCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newTrainPPOCmd() *cobra.Command {
	return &cobra.Command{Use: "ppo", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}

// newTrainDPOCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newTrainDPOCmd() *cobra.Command {
	return &cobra.Command{Use: "dpo", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}

// newTrainGenerateCmd is a placeholder until its command lands; it is replaced by the owner of this file.
func newTrainGenerateCmd() *cobra.Command {
	return &cobra.Command{Use: "generate", Short: "(not yet implemented)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
