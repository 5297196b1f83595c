// Package search is the shop's full-text search: a port of the Lucene
// EnglishAnalyzer that WebShop's pyserini index uses (analysis.go) and an
// in-memory BM25 inverted index with Lucene's scoring (index.go).
//
// The index knows documents by their position 0..n-1 and breaks equal scores
// by the lower position; a caller that wants another tie order (WebShop's
// Anserini breaks ties by the document id string, the ASIN) indexes the
// documents in that order. It imports nothing of the project.
package search
