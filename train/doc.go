// Package train holds the training jobs of shopagent (masked-LM pretraining, imitation
// learning, policy gradient, PPO, DPO, generation and evaluation) and the GoMLX fixes they
// rely on.
//
// Before building any training graph, call InstallFastDotGradients once: GoMLX v0.26.0's
// stock gradients of Dot and DotGeneral build a broadcast outer product that makes training
// 7-9x slower on the pure-Go backend. The replacement is registered in GoMLX's
// process-global gradient table (graph.VJPRegistration); see gradfix.go.
package train
