// Package env is a WebShop-compatible shop simulator: catalog loading and
// generation, goals, BM25 search, pages and actions, observations and reward.
//
// The environment follows the Gymnasium contract: Reset(goal) returns the first
// observation and Step(action) returns the next observation, the reward, whether
// the episode is done and extra information. Many environments can run in
// parallel goroutines over one shared, read-only Shop (catalog plus index).
package env
