// Package models holds the shopping agents' policy in GoMLX: the BERT encoder sized by a
// preset, the choice and value heads, the query model, checkpoints and the Hugging Face
// import. Tokenization and featurization (text to token ids, padded batches) live in
// package features, which has no GoMLX dependency, so that the policy server shares them
// without linking the training stack.
package models
