package train

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/features"
	"shopagent/models"
)

// Training the learned query model (models.QueryModel) on WebShop's human search queries
// (goal_query_map.json: instruction -> the queries humans typed for it). Each instruction
// word is labelled with the fraction of the instruction's human queries that contain it (its
// first occurrence; later repeats get 0); the tagger is trained with the binary
// cross-entropy of its keep probability on the words' first pieces.

// LoadQueryRefs reads a goal_query_map.json (instruction -> human queries). Instructions
// without a non-empty query are dropped.
func LoadQueryRefs(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: query map: %w", err)
	}
	var m map[string][]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("train: query map %s: want a JSON object instruction -> [queries]: %w", path, err)
	}
	out, err := QueryRefs(m)
	if err != nil {
		return nil, fmt.Errorf("train: query map %s: %w", path, err)
	}
	return out, nil
}

// QueryRefs keeps the instructions of a query map (instruction -> human queries) that
// have a non-empty query, with those queries.
func QueryRefs(m map[string][]string) (map[string][]string, error) {
	out := map[string][]string{}
	for ins, qs := range m {
		var keep []string
		for _, q := range qs {
			if len(features.QueryWords(q)) > 0 {
				keep = append(keep, q)
			}
		}
		if len(keep) > 0 && len(features.QueryWords(ins)) > 0 {
			out[ins] = keep
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no instruction with a query")
	}
	return out, nil
}

// LoadHumanGoals reads WebShop's human_goals.json (a JSON list of instructions, in WebShop's
// goal order: the first 500 are its test split, the next 1,000 its dev split).
func LoadHumanGoals(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: human goals: %w", err)
	}
	var goals []string
	if err := json.Unmarshal(b, &goals); err != nil {
		return nil, fmt.Errorf("train: human goals %s: want a JSON list of instructions: %w", path, err)
	}
	return goals, nil
}

// QueryLabels labels the instruction words with the fraction of the human queries that
// contain them (a word's first occurrence only).
func QueryLabels(words []string, queries []string) []float32 {
	sets := make([]map[string]bool, len(queries))
	for i, q := range queries {
		sets[i] = map[string]bool{}
		for _, w := range features.QueryWords(q) {
			sets[i][w] = true
		}
	}
	labels := make([]float32, len(words))
	seen := map[string]bool{}
	for i, w := range words {
		if seen[w] {
			continue
		}
		seen[w] = true
		n := 0
		for _, s := range sets {
			if s[w] {
				n++
			}
		}
		labels[i] = float32(n) / float32(max(1, len(queries)))
	}
	return labels
}

// SplitQueryRefs splits the instructions into training and held-out sets: a fraction
// holdout of them (sorted, then shuffled with seed), held out by instruction.
func SplitQueryRefs(refs map[string][]string, holdout float64, seed uint64) (trainRefs, held map[string][]string) {
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	n := int(holdout*float64(len(keys)) + 0.5)
	n = min(max(n, 0), len(keys))
	trainRefs, held = map[string][]string{}, map[string][]string{}
	for i, k := range keys {
		if i < n {
			held[k] = refs[k]
		} else {
			trainRefs[k] = refs[k]
		}
	}
	return trainRefs, held
}

// QueryJobName is the job name of query model training.
const QueryJobName = models.QueryJobName

type queryExample struct {
	enc    models.QueryEncoding
	labels []float32
}

// QueryJob trains the query model's tagger (a Job). Batches have a fixed number of rows
// (short batches are padded with empty rows) and a token length rounded up to 16.
type QueryJob struct {
	cfg       features.PolicyConfig
	examples  []queryExample
	batchSize int
	seed      uint64
}

// NewQueryJob builds the job from instruction -> human queries, encoded with tok and
// cfg.MaxStateLen tokens at most.
func NewQueryJob(cfg features.PolicyConfig, tok *features.Tokenizer, refs map[string][]string, batchSize int, seed uint64) (*QueryJob, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("train: query job: batch size must be positive")
	}
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	j := &QueryJob{cfg: cfg, batchSize: batchSize, seed: seed}
	for _, ins := range keys {
		enc := models.EncodeQuery(tok, ins, cfg.MaxStateLen)
		if len(enc.Words) == 0 {
			continue
		}
		j.examples = append(j.examples, queryExample{enc: enc, labels: QueryLabels(enc.Words, refs[ins])})
	}
	if len(j.examples) == 0 {
		return nil, ErrNoData
	}
	return j, nil
}

// Name implements Job.
func (j *QueryJob) Name() string { return QueryJobName }

// MetricNames implements Job: the accuracy of the keep decisions (probability >= 0.5 vs
// label >= 0.5) over the words.
func (j *QueryJob) MetricNames() []string { return []string{"word_accuracy"} }

// Examples is the number of training instructions.
func (j *QueryJob) Examples() int { return len(j.examples) }

// BatchesPerEpoch is the number of batches in one pass over the examples.
func (j *QueryJob) BatchesPerEpoch() int { return (len(j.examples) + j.batchSize - 1) / j.batchSize }

// Batch implements Job: inputs ids, types, mask [B, T] (int32), labels and weights [B, T]
// (float32; weight 1 on each word's first piece).
func (j *QueryJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	per := int64(j.BatchesPerEpoch())
	epoch, k := step/per, int(step%per)
	perm := make([]int, len(j.examples))
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(j.seed, uint64(epoch)+1))
	rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
	idx := perm[k*j.batchSize : min((k+1)*j.batchSize, len(perm))]
	longest := 0
	for _, i := range idx {
		longest = max(longest, len(j.examples[i].enc.IDs))
	}
	b, t := j.batchSize, models.QueryPadLen(longest)
	ids, types, mask := make([]int32, b*t), make([]int32, b*t), make([]int32, b*t)
	labels, weights := make([]float32, b*t), make([]float32, b*t)
	for r, i := range idx {
		ex := j.examples[i]
		copy(ids[r*t:], ex.enc.IDs)
		copy(types[r*t:], ex.enc.Types)
		for p := range ex.enc.IDs {
			mask[r*t+p] = 1
		}
		for w, f := range ex.enc.First {
			if f >= 0 {
				labels[r*t+f] = ex.labels[w]
				weights[r*t+f] = 1
			}
		}
	}
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(ids, b, t), tensors.FromFlatDataAndDimensions(types, b, t),
		tensors.FromFlatDataAndDimensions(mask, b, t), tensors.FromFlatDataAndDimensions(labels, b, t),
		tensors.FromFlatDataAndDimensions(weights, b, t),
	}, len(idx), nil
}

// Loss implements Job: the weighted mean binary cross-entropy of the keep logits.
func (j *QueryJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	logits := models.QueryTagGraph(ctx, j.cfg, inputs[0], inputs[1], inputs[2], true)
	return QueryTagLoss(logits, inputs[3], inputs[4])
}

// QueryTagLoss is the weighted mean binary cross-entropy of logits [B, T] against soft
// labels in [0, 1] (weights 0 ignore a position), and the weighted accuracy of the
// decisions logit >= 0 vs label >= 0.5.
func QueryTagLoss(logits, labels, weights *graph.Node) (*graph.Node, []*graph.Node) {
	g := logits.Graph()
	zero := graph.ScalarZero(g, dtypes.Float32)
	// softplus(l) - y*l, computed stably: max(l, 0) + log(1 + exp(-|l|)) - y*l.
	sp := graph.Add(graph.Max(logits, zero), graph.Log(graph.OnePlus(graph.Exp(graph.Neg(graph.Abs(logits))))))
	bce := graph.Sub(sp, graph.Mul(labels, logits))
	total := graph.Max(graph.ReduceAllSum(weights), graph.ScalarOne(g, dtypes.Float32))
	loss := graph.Div(graph.ReduceAllSum(graph.Mul(bce, weights)), total)
	pred := graph.GreaterOrEqual(logits, zero)
	gold := graph.GreaterOrEqual(labels, graph.Scalar(g, dtypes.Float32, 0.5))
	right := graph.OneMinus(graph.Abs(graph.Sub(graph.ConvertDType(pred, dtypes.Float32), graph.ConvertDType(gold, dtypes.Float32))))
	acc := graph.Div(graph.ReduceAllSum(graph.Mul(right, weights)), total)
	return loss, []*graph.Node{acc}
}

// QueryF1Result compares query proposers with human queries on a set of instructions.
type QueryF1Result struct {
	// Instructions is the number of instructions compared.
	Instructions int `json:"instructions"`
	// Model, Heuristic and Instruction are the mean best token F1 (train.QueryF1's measure)
	// of the query model's first query, the keyword heuristic's and the instruction itself.
	Model       float64 `json:"model_f1"`
	Heuristic   float64 `json:"heuristic_f1"`
	Instruction float64 `json:"instruction_f1"`
}

// batchProposer answers Queries from a precomputed table (the query model scores the
// instructions in batches first).
type batchProposer map[string][]string

func (b batchProposer) Queries(ins string) []string { return b[ins] }

// EvaluateQueryModel computes the token F1 of the model, the heuristic and the instruction
// against the human queries refs (the model's forward passes are batched).
func EvaluateQueryModel(m *models.QueryModel, refs map[string][]string) (QueryF1Result, error) {
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	qs, err := m.Propose(keys)
	if err != nil {
		return QueryF1Result{}, err
	}
	table := batchProposer{}
	for i, k := range keys {
		table[k] = qs[i]
	}
	res := QueryF1Result{Instructions: len(keys)}
	res.Model, res.Instruction = QueryF1(refs, table)
	res.Heuristic, _ = QueryF1(refs, features.KeywordQuery{})
	return res, nil
}
