// Package models holds the shopping agents' policy: the BERT uncased WordPiece
// tokenizer (with WebShop's four button tokens), the vocabulary builder, the BERT
// encoder sized by a preset, and the choice and value heads.
//
// models imports neither env nor datasets: it sees observations and actions only
// as text. States are truncated from the left (the tail of an observation is
// kept), actions from the right.
package models
