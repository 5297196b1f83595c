// Package features turns shop pages and actions into the policy's inputs: the BERT
// uncased WordPiece tokenizer (with WebShop's four button tokens), the vocabulary builder,
// the featurization of an observation and its clickables into a state and action texts,
// their token ids, and padded batches; and the model sizes (BertConfig, PolicyConfig) that
// bound them. Training (models, train) and serving (serve, export/onnxrt) use the same
// functions, so both featurize identically; it does not depend on GoMLX.
//
// States are truncated from the left (the tail of an observation is kept), actions from
// the right. Of this repository it imports only env (for the instruction's place on a
// page).
package features
