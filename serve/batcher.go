package serve

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Dynamic batching: concurrent /act requests for one arm are scored in one ONNX Runtime
// call. On a GPU one call of B states costs little more than one of a single state (the
// kernels are launch- and memory-bound at B=1), so gathering requests raises throughput;
// on a CPU with one intra-op thread per run it does not (docs/BENCHMARKS.md), hence off by
// default there.

// DefaultBatchMax is BatchOptions.MaxBatch's default.
const DefaultBatchMax = 32

// DefaultCUDABatchWindow is `serve --batch-window`'s default with --device cuda (batching
// is off by default on the CPU). Provisional: not yet measured on a GPU (bench/gpu_check.sh
// measures 0 against it).
const DefaultCUDABatchWindow = time.Millisecond

// BatchOptions configure a Batcher.
type BatchOptions struct {
	// Window is how long the first request of a batch waits for others: a batch is
	// scored when Window has passed since its first request arrived or when it holds
	// MaxBatch requests, whichever comes first. So batching adds at most Window to a
	// request's latency before its forward pass starts. Must be positive.
	Window time.Duration
	// MaxBatch is the most requests scored in one call (0: DefaultBatchMax).
	MaxBatch int
}

// BatchPolicy is a Policy that scores several observations in one call (ONNXPolicy).
type BatchPolicy interface {
	Policy
	// ActBatch returns one decision per input, in order.
	ActBatch(inputs []ActInput) ([]Decision, error)
}

// BatchStats counts what a Batcher did since it was created.
type BatchStats struct {
	// Requests is the number of Act calls scored; Batches the number of ActBatch calls
	// they were scored in (Requests / Batches is the mean batch size); Fallbacks the
	// batches that failed as a whole and were scored request by request.
	Requests, Batches, Fallbacks uint64
}

// Batcher is a Policy that gathers concurrent Act calls into batches scored by one
// ActBatch of the policy it wraps (see BatchOptions for when a batch is scored). Each
// caller gets the decision of its own observation: a batch's decisions are handed back by
// position, and when ActBatch fails for the whole batch (one bad observation, say) every
// request of it is scored alone, so one request's error is never another's. Batches are
// scored concurrently (the wrapped policy must be safe for concurrent use, as ONNXPolicy
// is). Close stops it and closes the wrapped policy.
type Batcher struct {
	inner BatchPolicy
	opts  BatchOptions
	reqs  chan *batchReq
	stop  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup // batches being scored
	once  sync.Once
	// timer starts a batch's window; tests replace it to drive the window by hand.
	timer func(d time.Duration) (<-chan time.Time, func() bool)
	// queued counts requests the collector holds in the batch it is gathering.
	queued                       atomic.Int64
	requests, batches, fallbacks atomic.Uint64
}

var _ Policy = (*Batcher)(nil)

type batchReq struct {
	in  ActInput
	out chan batchResult
}

type batchResult struct {
	d   Decision
	err error
}

// ErrBatcherClosed is returned by Act after Close.
var ErrBatcherClosed = errors.New("serve: batcher closed")

// NewBatcher wraps p in a Batcher and starts its collector.
func NewBatcher(p BatchPolicy, opts BatchOptions) (*Batcher, error) {
	if p == nil {
		return nil, errors.New("serve: batcher: no policy")
	}
	if opts.Window <= 0 {
		return nil, fmt.Errorf("serve: batcher: window %s must be positive", opts.Window)
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = DefaultBatchMax
	}
	if opts.MaxBatch < 1 {
		return nil, fmt.Errorf("serve: batcher: max batch %d must be positive", opts.MaxBatch)
	}
	b := newBatcher(p, opts, func(d time.Duration) (<-chan time.Time, func() bool) {
		t := time.NewTimer(d)
		return t.C, t.Stop
	})
	return b, nil
}

// newBatcher builds a Batcher with the given window timer and starts its collector.
func newBatcher(p BatchPolicy, opts BatchOptions, timer func(time.Duration) (<-chan time.Time, func() bool)) *Batcher {
	b := &Batcher{inner: p, opts: opts, reqs: make(chan *batchReq), stop: make(chan struct{}), done: make(chan struct{}), timer: timer}
	go b.collect()
	return b
}

// Act implements Policy: it waits for the decision of its observation, scored in a batch.
func (b *Batcher) Act(instruction, observation string, actions []string) (Decision, error) {
	r := &batchReq{in: ActInput{Instruction: instruction, Observation: observation, Actions: actions}, out: make(chan batchResult, 1)}
	select {
	case b.reqs <- r:
	case <-b.stop:
		return Decision{}, ErrBatcherClosed
	}
	res := <-r.out
	return res.d, res.err
}

// collect gathers requests into batches and hands each to a goroutine that scores it.
func (b *Batcher) collect() {
	defer close(b.done)
	for {
		var first *batchReq
		select {
		case first = <-b.reqs:
		case <-b.stop:
			return
		}
		batch := []*batchReq{first}
		b.queued.Store(1)
		fire, stopTimer := b.timer(b.opts.Window)
		stopped := false
	gather:
		for len(batch) < b.opts.MaxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				b.queued.Add(1)
			case <-fire:
				break gather
			case <-b.stop:
				stopped = true
				break gather
			}
		}
		stopTimer()
		b.queued.Store(0)
		b.wg.Add(1)
		go b.score(batch)
		if stopped {
			return
		}
	}
}

// score runs one batch and hands every request its decision.
func (b *Batcher) score(batch []*batchReq) {
	defer b.wg.Done()
	b.batches.Add(1)
	b.requests.Add(uint64(len(batch)))
	inputs := make([]ActInput, len(batch))
	for i, r := range batch {
		inputs[i] = r.in
	}
	ds, err := b.actBatch(inputs)
	if err == nil && len(ds) != len(batch) {
		err = fmt.Errorf("serve: batcher: %d decisions for %d observations", len(ds), len(batch))
	}
	if err == nil {
		for i, r := range batch {
			r.out <- batchResult{d: ds[i]}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].out <- batchResult{err: err}
		return
	}
	// The batch failed as a whole: score each request alone, so that each gets its own
	// decision or its own error.
	b.fallbacks.Add(1)
	for _, r := range batch {
		ds, err := b.actBatch([]ActInput{r.in})
		if err == nil && len(ds) != 1 {
			err = fmt.Errorf("serve: batcher: %d decisions for 1 observation", len(ds))
		}
		if err != nil {
			r.out <- batchResult{err: err}
			continue
		}
		r.out <- batchResult{d: ds[0]}
	}
}

// actBatch calls the wrapped policy, turning a panic into an error (the batch runs on its
// own goroutine, outside the HTTP server's recovery).
func (b *Batcher) actBatch(inputs []ActInput) (ds []Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			ds, err = nil, fmt.Errorf("serve: batcher: policy panicked: %v", r)
		}
	}()
	return b.inner.ActBatch(inputs)
}

// Stats returns the batcher's counters.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Requests: b.requests.Load(), Batches: b.batches.Load(), Fallbacks: b.fallbacks.Load()}
}

// Options returns the batcher's options (defaults filled in).
func (b *Batcher) Options() BatchOptions { return b.opts }

// Info implements Policy: the wrapped policy's.
func (b *Batcher) Info() PolicyInfo { return b.inner.Info() }

// ActionCache reports the wrapped policy's action-encoding cache, if it has one.
func (b *Batcher) ActionCache() (ActionCacheStats, bool) {
	if c, ok := b.inner.(interface {
		ActionCache() (ActionCacheStats, bool)
	}); ok {
		return c.ActionCache()
	}
	return ActionCacheStats{}, false
}

// Close implements Policy: later Acts fail with ErrBatcherClosed, the batch being gathered
// is scored, batches in flight finish, then the wrapped policy is closed.
func (b *Batcher) Close() error {
	var err error
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.wg.Wait()
		err = b.inner.Close()
	})
	return err
}
