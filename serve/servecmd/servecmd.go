// Package servecmd holds the cobra commands of the policy server, `serve` and `ope`, shared
// by the full CLI (cmd/shopagent) and the serve-only binary (cmd/shopagent-serve). It links
// ONNX Runtime (export/onnxrt) but no GoMLX.
package servecmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"shopagent/bandit"
	"shopagent/export/onnxrt"
	"shopagent/serve"
	"shopagent/serve/decisionlog"
)

// adminTokenEnv is the environment variable read when --admin-token is empty.
const adminTokenEnv = "SHOPAGENT_ADMIN_TOKEN"

// ortFlags are the ONNX Runtime flags of the commands that load policy directories.
type ortFlags struct {
	lib     string
	threads int
	device  string
	cacheMB int
	chunk   int
	// batchWindow > 0 wraps every ONNX policy in a dynamic batcher (serve only).
	batchWindow time.Duration
	batchMax    int
}

func (f *ortFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.lib, "ort-lib", "", "ONNX Runtime shared library (default $SHOPAGENT_ORT_LIB, else third_party/onnxruntime/libonnxruntime.so.1)")
	cmd.Flags().IntVar(&f.threads, "ort-threads", 1, "ONNX Runtime intra-op threads per forward pass")
	cmd.Flags().StringVar(&f.device, "device", "cpu", "ONNX Runtime device: cpu or cuda (cuda needs the CUDA provider: make onnxruntime-cuda, --ort-lib third_party/onnxruntime-cuda/libonnxruntime.so.1; docs/GPU.md)")
	cmd.Flags().IntVar(&f.chunk, "chunk-actions", serve.DefaultChunkActions, "score at most this many actions per ONNX Runtime run (larger requests in chunks: bounds a request's memory)")
	cmd.Flags().IntVar(&f.cacheMB, "action-cache-mb", 64, "MiB per policy for cached action encodings (needs actions.onnx and scorer.onnx in the policy directory; 0: encode every action of every request with model.onnx)")
}

// checkDevice fails at once, with one error naming what is missing, when --device cuda
// cannot work on this machine (instead of every arm failing to load in the background).
func (f *ortFlags) checkDevice() error {
	switch strings.ToLower(strings.TrimSpace(f.device)) {
	case onnxrt.DeviceCPU, "":
		return nil
	case onnxrt.DeviceCUDA:
		return onnxrt.CheckCUDA(f.lib)
	}
	return fmt.Errorf("--device %q: want cpu or cuda", f.device)
}

// loader loads a policy directory: a lexical baseline when it holds lexical.json, else
// an exported ONNX policy (model.onnx, vocab.txt, policy.json).
func (f *ortFlags) loader() serve.Loader {
	return func(dir string) (serve.Policy, error) {
		if _, err := os.Stat(filepath.Join(dir, serve.LexicalConfigFile)); err == nil {
			return serve.LoadLexicalPolicy(dir)
		}
		p, err := serve.LoadONNXPolicy(dir, serve.ORTOptions{Lib: f.lib, IntraOpThreads: f.threads, Device: f.device, ActionCacheMB: f.cacheMB, ChunkActions: f.chunk})
		if err != nil {
			return nil, err
		}
		if f.batchWindow > 0 {
			b, err := serve.NewBatcher(p, serve.BatchOptions{Window: f.batchWindow, MaxBatch: f.batchMax})
			if err != nil {
				p.Close()
				return nil, err
			}
			return b, nil
		}
		return p, nil
	}
}

// newServeLogger returns the server's structured logger on w.
func newServeLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// redisLog sends go-redis's own log lines to the server's logger at debug level.
type redisLog struct{ l *slog.Logger }

// Printf implements go-redis's logger.
func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}

// storeOptions are the serve flags that choose the state store.
type storeOptions struct {
	redisURL, prefix, outage  string
	timeout                   time.Duration
	sessionTTL, rewardTimeout time.Duration
	logs                      *decisionlog.Writer
	logger                    *slog.Logger
}

// openStore returns the server's state store: Redis behind a circuit breaker with
// --redis, else the in-process store, rebuilt from the logs when there are logs.
func openStore(ctx context.Context, o storeOptions) (serve.Store, error) {
	if o.redisURL != "" {
		rs, err := serve.NewRedisStore(ctx, serve.RedisOptions{URL: o.redisURL, Prefix: o.prefix, SessionTTL: o.sessionTTL, Timeout: o.timeout})
		if err != nil {
			return nil, err
		}
		fs, err := serve.NewFailoverStore(rs, serve.FailoverOptions{Mode: o.outage, Logger: o.logger})
		if err != nil {
			rs.Close()
			return nil, err
		}
		return fs, nil
	}
	if o.outage != serve.OutageLocal && o.outage != serve.OutageFail {
		return nil, fmt.Errorf("--store-outage %q: want %s or %s", o.outage, serve.OutageLocal, serve.OutageFail)
	}
	ms := serve.NewMemoryStore(o.sessionTTL, o.sessionTTL)
	if o.logs != nil {
		st, err := ms.RebuildFromLogs(o.logs.Dir(), time.Now(), o.rewardTimeout)
		if err != nil {
			return nil, err
		}
		o.logger.Info("state rebuilt from the logs", "rewards", st.Rewards, "sessions", st.Sessions,
			"pending_episodes", st.Pending, "events", st.Events)
	}
	return ms, nil
}

func parseWeights(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		w, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return nil, fmt.Errorf("--weights: %q is not a number", p)
		}
		out = append(out, w)
	}
	return out, nil
}

// signalContext returns a context cancelled on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// NewServeCmd returns the `serve` command: the HTTP policy server.
func NewServeCmd() *cobra.Command {
	var of ortFlags
	var armsFlag, mode, weights, addr, addrFile, adminToken, redisURL, redisPrefix, outageMode, logDir, logFormat string
	var minShare, priorA, priorB float64
	var sample bool
	var seed uint64
	var rewardTimeout, sessionTTL, logFlush, logSync, drain, redisTimeout time.Duration
	var maxBody, logMaxBytes int64
	var maxActions, maxText int
	cmd := &cobra.Command{
		Use:   "serve --arms ppo=DIR,dpo=DIR [--mode thompson|canary --weights 0.9,0.1] [--addr :8080]",
		Short: "Serve policies over HTTP, routing sessions to arms by Thompson sampling or canary weights",
		Long: `Serves exported policy directories (shopagent export: model.onnx, vocab.txt,
policy.json, run on ONNX Runtime) or lexical baselines (a directory with
lexical.json) as arms of a bandit. See docs/SERVE.md for the contract.

  POST /act           {session_id, observation, available_actions[], instruction?, arm?}
                      -> {event_id, arm, policy, action, index, probabilities[], propensity, ...}
  POST /feedback      {event_id | session_id, reward}
  GET  /arms          per arm episodes, mean score, success rate, posterior, P(best)
  GET  /healthz, /readyz (ready when every arm is loaded), /metrics (Prometheus)
  POST /admin/reload  {arm?} with "Authorization: Bearer TOKEN": reload from disk;
                      a failed load keeps the old policy serving

A session gets an arm on its first /act (Thompson sampling on the Beta
posteriors of success with a --min-share floor, or fixed --weights in canary
mode) and keeps it for --session-ttl after its last decision. A session's
episode ends with its /feedback; one with no reward --reward-timeout after its
last decision counts as reward 0. The action is the policy's argmax, or drawn
from its probabilities with --sample (needed for off-policy evaluation).

Client mistakes are 4xx: malformed or non-UTF-8 JSON, a Content-Type other
than application/json (415), an action that WebShop's parser does not read as
click[...] or search[...] (400, naming it).

State lives in process, or in Redis with --redis so that replicas share one
posterior. Redis commands time out after --redis-timeout behind a circuit
breaker; while Redis is down, --store-outage local (default) serves from the
replica's local state and writes it back on recovery, --store-outage fail
answers 503 and /readyz is unready. Without Redis and with --logs, a restart
rebuilds the posteriors and the open sessions from the logs.

--logs DIR writes every decision and reward to a write-ahead log (fsync every
--log-sync) and cuts it into Parquet files (partitioned by date and arm) every
--log-flush; on start the WAL left by a crash is recovered into Parquet. The
server logs JSON lines to stderr (--log-format): every 5xx, failed reload and
store outage transition with its cause and request id; 4xx sampled. SIGTERM
drains requests and closes the logs. See docs/SERVE.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			specs, err := serve.ParseArmSpecs(armsFlag)
			if err != nil {
				return err
			}
			if err := of.checkDevice(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("batch-window") && strings.EqualFold(strings.TrimSpace(of.device), onnxrt.DeviceCUDA) {
				of.batchWindow = serve.DefaultCUDABatchWindow
			}
			if of.batchWindow < 0 || of.batchMax < 1 {
				return fmt.Errorf("--batch-window %s and --batch-max %d: want a window >= 0 and a max >= 1", of.batchWindow, of.batchMax)
			}
			var ws []float64
			if mode == serve.ModeCanary {
				if ws, err = parseWeights(weights); err != nil {
					return err
				}
			} else if cmd.Flags().Changed("weights") {
				return fmt.Errorf("--weights needs --mode canary")
			}
			if adminToken == "" {
				adminToken = os.Getenv(adminTokenEnv)
			}
			for _, sp := range specs {
				if st, err := os.Stat(sp.Dir); err != nil || !st.IsDir() {
					return fmt.Errorf("arm %s: policy directory %s does not exist (check --arms: name=DIR, DIR from shopagent export or with lexical.json)", sp.Name, sp.Dir)
				}
			}
			logger, err := newServeLogger(cmd.ErrOrStderr(), logFormat)
			if err != nil {
				return err
			}
			// go-redis logs every failed dial itself; during an outage the breaker's
			// transitions say it once.
			redis.SetLogger(redisLog{logger})
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			var logs *decisionlog.Writer
			if logDir != "" {
				logs, err = decisionlog.Open(decisionlog.Config{Dir: logDir, SyncEvery: logSync, CutEvery: logFlush,
					SegmentBytes: logMaxBytes, Logger: logger})
				if err != nil {
					return err
				}
			}
			store, err := openStore(ctx, storeOptions{redisURL: redisURL, prefix: redisPrefix, timeout: redisTimeout,
				outage: outageMode, sessionTTL: sessionTTL, rewardTimeout: rewardTimeout, logs: logs, logger: logger})
			if err != nil {
				if logs != nil {
					logs.Close()
				}
				return err
			}
			srv, err := serve.New(serve.Config{Arms: specs, Loader: of.loader(), Mode: mode, Weights: ws,
				MinShare: minShare, Prior: bandit.Prior{Alpha: priorA, Beta: priorB}, Sample: sample, Seed: seed,
				RewardTimeout: rewardTimeout, SessionTTL: sessionTTL, AdminToken: adminToken,
				MaxBody: maxBody, MaxActions: maxActions, MaxText: maxText, Store: store, Logs: logs, Logger: logger})
			if err != nil {
				if logs != nil {
					logs.Close()
				}
				if store != nil {
					store.Close()
				}
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				srv.Shutdown()
				return fmt.Errorf("serve: listen %s: %w", addr, err)
			}
			bound := ln.Addr().String()
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(bound+"\n"), 0o644); err != nil {
					ln.Close()
					srv.Shutdown()
					return err
				}
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
				WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
			serveErr := make(chan error, 1)
			go func() { serveErr <- hs.Serve(ln) }()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %d arms (%s) on http://%s\n", len(specs), mode, bound)
			srv.Start()
			go func() {
				t := time.Now()
				if err := srv.LoadArms(); err != nil {
					fix := "fix the policy directory and restart the server (POST /admin/reload needs --admin-token)"
					if adminToken != "" {
						fix = "fix the policy directory and POST /admin/reload with the admin token"
					}
					logger.Error("not ready: an arm did not load", "error", err.Error(), "fix", fix)
					return
				}
				logger.Info("ready: every arm loaded", "took_ms", time.Since(t).Milliseconds())
			}()
			var runErr error
			select {
			case <-ctx.Done():
				logger.Info("shutting down", "drain", drain.String())
			case err := <-serveErr:
				if !errors.Is(err, http.ErrServerClosed) {
					runErr = fmt.Errorf("serve: %w", err)
				}
			}
			dctx, dcancel := context.WithTimeout(context.Background(), drain)
			defer dcancel()
			if err := hs.Shutdown(dctx); err != nil && runErr == nil {
				runErr = fmt.Errorf("serve: drain: %w", err)
			}
			if err := srv.Shutdown(); err != nil && runErr == nil {
				runErr = fmt.Errorf("serve: shutdown: %w", err)
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&armsFlag, "arms", "", "arms as name=DIR,name=DIR (policy directories: exported ONNX or lexical.json)")
	f.StringVar(&mode, "mode", serve.ModeThompson, "arm routing of new sessions: thompson or canary")
	f.StringVar(&weights, "weights", "", "canary weights, one per arm in --arms order (e.g. 0.9,0.1)")
	f.Float64Var(&minShare, "min-share", 0.05, "thompson: minimum share of new sessions per arm (higher than abtest's 0.02: live traffic drifts and new policies arrive, so the server keeps learning about every arm; abtest spends a fixed budget of simulated episodes)")
	f.Float64Var(&priorA, "prior-alpha", 1, "alpha of the Beta prior of every arm's success probability")
	f.Float64Var(&priorB, "prior-beta", 1, "beta of the Beta prior")
	f.BoolVar(&sample, "sample", false, "draw actions from the policy's probabilities instead of the argmax (logs then support off-policy evaluation)")
	f.Uint64Var(&seed, "seed", 0, "seed of the arm and action draws (0: random)")
	f.StringVar(&addr, "addr", ":8080", "listen address")
	f.StringVar(&addrFile, "addr-file", "", "write the bound address (host:port) to this file once listening")
	f.StringVar(&adminToken, "admin-token", "", "bearer token of POST /admin/reload (default $"+adminTokenEnv+"; empty disables it)")
	f.DurationVar(&rewardTimeout, "reward-timeout", serve.DefaultRewardTimeout, "an episode with no reward this long after its last decision counts as reward 0")
	f.DurationVar(&sessionTTL, "session-ttl", serve.DefaultSessionTTL, "a session forgets its arm this long after its last decision (>= --reward-timeout)")
	f.Int64Var(&maxBody, "max-body", serve.DefaultMaxBody, "largest request body in bytes (413 above)")
	f.IntVar(&maxActions, "max-actions", serve.DefaultMaxActions, "most available_actions of one /act (400 above)")
	f.IntVar(&maxText, "max-text", serve.DefaultMaxText, "longest observation, instruction or action in bytes (400 above)")
	f.StringVar(&redisURL, "redis", "", "keep arm statistics and sessions in Redis (redis://host:port/db), shared by replicas")
	f.StringVar(&redisPrefix, "redis-prefix", "shopagent:", "prefix of the Redis keys")
	f.DurationVar(&redisTimeout, "redis-timeout", serve.DefaultRedisTimeout, "bound on every Redis dial, read and write (a dead Redis costs at most this, then the circuit breaker answers at once)")
	f.StringVar(&outageMode, "store-outage", serve.OutageLocal, "while Redis is unreachable: local (serve from this replica's state, sticky-hash new sessions, write back on recovery) or fail (503, /readyz unready)")
	f.StringVar(&logDir, "logs", "", "write decision and reward logs (WAL, cut into Parquet) under this directory")
	f.DurationVar(&logSync, "log-sync", decisionlog.DefaultSyncEvery, "fsync the decision WAL this often (group commit: the most a machine crash loses)")
	f.DurationVar(&logFlush, "log-flush", decisionlog.DefaultCutEvery, "cut the WAL into Parquet files this often")
	f.Int64Var(&logMaxBytes, "log-max-bytes", decisionlog.DefaultSegmentBytes, "cut the WAL into Parquet files as soon as a segment reaches this many bytes")
	f.StringVar(&logFormat, "log-format", "json", "server log lines on stderr: json or text")
	f.DurationVar(&drain, "drain", 10*time.Second, "on SIGTERM, wait this long for requests in flight")
	f.DurationVar(&of.batchWindow, "batch-window", 0, "dynamic batching: /act requests for one arm arriving within this window of the first (or up to --batch-max) are scored in one ONNX Runtime call; 0 = off (default on the CPU; "+serve.DefaultCUDABatchWindow.String()+" with --device cuda)")
	f.IntVar(&of.batchMax, "batch-max", serve.DefaultBatchMax, "dynamic batching: the most requests scored in one call")
	of.register(cmd)
	return cmd
}

// NewOpeCmd returns the `ope` command: off-policy evaluation on the server's logs.
func NewOpeCmd() *cobra.Command {
	var of ortFlags
	var logs, policy, ci, asJSON, arms string
	var clip, level float64
	var boot int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "ope --logs DIR --policy DIR",
		Short: "Off-policy evaluation of a policy on the server's decision and reward logs",
		Long: `Estimates the mean episode reward a policy would earn had it chosen the
logged actions' steps itself, from the decision and reward logs of
shopagent serve --logs DIR: IPS, self-normalised IPS and doubly robust (the
policy's value head as the direct-method model), with bootstrap (default) or
normal confidence intervals. An episode's importance weight is the product over
its decisions of policy probability / logged action_propensity; --clip caps the
cumulative weights. Logs from greedy serving (propensity 1) only support
deterministic targets: serve with --sample for off-policy evaluation.
See docs/SERVE.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logs == "" || policy == "" {
				return fmt.Errorf("--logs and --policy are required")
			}
			decs, err := decisionlog.ReadDecisions(logs)
			if err != nil {
				return err
			}
			rews, err := decisionlog.ReadRewards(logs)
			if err != nil {
				return err
			}
			if arms != "" {
				keep := map[string]bool{}
				for _, a := range strings.Split(arms, ",") {
					keep[strings.TrimSpace(a)] = true
				}
				k := decs[:0]
				for _, d := range decs {
					if keep[d.Arm] {
						k = append(k, d)
					}
				}
				decs = k
			}
			if len(decs) == 0 {
				return fmt.Errorf("no decisions under %s", logs)
			}
			pol, err := of.loader()(policy)
			if err != nil {
				return err
			}
			defer pol.Close()
			rep, err := serve.EvaluateOffPolicy(decs, rews, pol, serve.OPEConfig{Clip: clip, CI: ci, Bootstrap: boot, Level: level, Seed: seed})
			if err != nil {
				return err
			}
			if asJSON != "" {
				b, _ := json.MarshalIndent(map[string]any{"policy": pol.Info(), "logs": logs, "report": rep}, "", "  ")
				if err := os.WriteFile(asJSON, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.Markdown(pol.Info().Name))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&logs, "logs", "", "log directory of shopagent serve --logs")
	f.StringVar(&policy, "policy", "", "policy directory to evaluate (exported ONNX or lexical.json)")
	f.StringVar(&arms, "arms", "", "use only the decisions of these arms (comma-separated; default all)")
	f.Float64Var(&clip, "clip", 0, "cap the cumulative importance weights at this value (0: no clipping)")
	f.StringVar(&ci, "ci", "bootstrap", "confidence intervals: bootstrap or normal")
	f.IntVar(&boot, "bootstrap", 1000, "bootstrap resamples")
	f.Float64Var(&level, "level", 0.95, "confidence level")
	f.Uint64Var(&seed, "seed", 1, "bootstrap seed")
	f.StringVar(&asJSON, "json", "", "also write the report as JSON to this file")
	of.register(cmd)
	return cmd
}
