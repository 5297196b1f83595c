package onnxrt

import (
	"encoding/binary"
	"fmt"

	"shopagent/features"
)

// ExactBatch pads encoded choices into one features.PolicyBatch sized to exactly what they
// need (the graph's axes are all dynamic, so there is no reason to pad to GoMLX's shape
// buckets): B = the number of states, Ts the longest state, A the most actions, U the
// number of distinct actions, Ta the longest action. The padding itself is
// features.NewPolicyBatch's, as in training.
func ExactBatch(examples []features.EncodedChoice) (*features.PolicyBatch, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("onnxrt: empty batch")
	}
	maxTs, maxTa, maxA := 1, 1, 1
	distinct := map[string]struct{}{}
	for i, ex := range examples {
		if len(ex.Actions) == 0 {
			return nil, fmt.Errorf("onnxrt: state %d has no actions", i)
		}
		maxTs = max(maxTs, len(ex.State))
		maxA = max(maxA, len(ex.Actions))
		for _, a := range ex.Actions {
			maxTa = max(maxTa, len(a))
			distinct[string(AppendActionKey(nil, a))] = struct{}{}
		}
	}
	sizes := features.BucketSizes{
		Batch: []int{len(examples)}, State: []int{maxTs}, Action: []int{maxTa},
		Actions: []int{maxA}, Unique: []int{len(distinct)},
	}
	pb, err := features.NewPolicyBatch(examples, sizes, 0)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: %w", err)
	}
	return pb, nil
}

// AppendActionKey appends the key of an action's token ids to dst: the ids as
// little-endian uint32s. Two actions share a key exactly when they have the same tokens,
// which is when their encoder states are the same (ExactBatch counts distinct actions by
// it, the server's action cache stores encodings under it).
func AppendActionKey(dst []byte, ids []int32) []byte {
	for _, id := range ids {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(id))
	}
	return dst
}
