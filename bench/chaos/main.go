// Command chaos is the fault-injection test of the policy server (bench/chaos.sh runs
// it): load at a fixed concurrency against `shopagent serve` replicas on loopback while it
// kills and restarts Redis, reloads arms (some with a corrupt policy) and kills -9 and
// restarts a replica; then it counts the acknowledged requests against the logged rows
// and the posteriors, and prints one table. Every process it starts listens on 127.0.0.1
// only; the run is bounded in time and stops by itself.
//
//	go run ./bench/chaos -bin bin/shopagent [-scenario redis|standalone|both] [-concurrency 32]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"shopagent/serve"
	"shopagent/serve/decisionlog"
)

func main() {
	bin := flag.String("bin", "bin/shopagent", "the shopagent binary")
	scenario := flag.String("scenario", "both", "redis (two replicas sharing Redis), standalone (one server without Redis) or both")
	conc := flag.Int("concurrency", 32, "concurrent clients")
	kills := flag.Int("kills", 5, "kill -9s of a replica per scenario")
	work := flag.String("dir", "", "working directory (default: a new temporary one, removed after)")
	throughput := flag.Int("throughput", 0, "instead of the faults: this many alternating 8 s runs of /act at -concurrency without and with --logs (WAL), medians")
	baseline := flag.String("baseline-bin", "", "with -throughput: also run this (older) shopagent binary with --logs in each round")
	policy := flag.String("policy", "", "with -throughput: serve this policy directory (default: a lexical arm, the cheapest policy)")
	flag.Parse()
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "shopagent-chaos-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if *throughput > 0 {
		if err := throughputRuns(*bin, *baseline, *policy, dir, *conc, *throughput); err != nil {
			fail(err)
		}
		return
	}
	var results []*result
	if *scenario == "redis" || *scenario == "both" {
		r, err := run(*bin, filepath.Join(dir, "redis"), true, *conc, *kills)
		if err != nil {
			fail(err)
		}
		results = append(results, r)
	}
	if *scenario == "standalone" || *scenario == "both" {
		r, err := run(*bin, filepath.Join(dir, "standalone"), false, *conc, *kills)
		if err != nil {
			fail(err)
		}
		results = append(results, r)
	}
	ok := true
	for _, r := range results {
		r.print(os.Stdout)
		ok = ok && r.ok()
	}
	if !ok {
		fmt.Println("FAIL: see above")
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	os.Exit(2)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a process the run starts, stops and kills.
type proc struct {
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 in %s", url, limit)
}

// window is a fault's time span; requests that start in it are counted in its row.
type window struct {
	name       string
	start, end time.Time
}

type reqRecord struct {
	start   time.Time
	latency time.Duration
	code    int // 0: connection error
	cause   string
}

type ackDecision struct {
	at      time.Time
	replica int
}

type ackReward struct {
	reward float64
	// at is the time of the first try: a retry that succeeds after the replica that
	// applied the first try died is answered from the store's record of the episode, and
	// the reward's log row is the one that replica wrote (or lost) then.
	at      time.Time
	replica int
}

type result struct {
	name                 string
	redis                bool
	windows              []window
	reqs                 []reqRecord
	decisions            map[string]ackDecision // event id -> ack
	rewards              map[string]ackReward   // session\nepisode -> ack
	loggedDecisions      map[string]bool
	loggedRewards        map[string]bool
	logged5xx            int
	kills                []time.Time
	postEpisodes         int64
	postSuccesses        int64
	postScore            float64
	ackSuccesses         int64
	ackScore             float64
	lostDecisionWindowMS []float64
	lostRewardWindowMS   []float64
	orphans              int
	rows5xxCauses        map[string]int
	errors               map[string]int // "code message prefix" -> count
}

type cluster struct {
	bin      string
	dir      string
	redis    *proc
	redisURL string
	replicas []*proc
	ports    []int
	mu       sync.RWMutex
	up       []bool
}

func (c *cluster) url(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", c.ports[i]) }

func (c *cluster) startReplica(i int) error {
	if err := c.replicas[i].start(); err != nil {
		return err
	}
	if err := waitHTTP(c.url(i)+"/readyz", 30*time.Second); err != nil {
		return err
	}
	c.mu.Lock()
	c.up[i] = true
	c.mu.Unlock()
	return nil
}

func (c *cluster) killReplica(i int) {
	c.mu.Lock()
	c.up[i] = false
	c.mu.Unlock()
	c.replicas[i].signal(syscall.SIGKILL)
}

// pick is the load balancer: the session's replica by hash, or the next live one.
func (c *cluster) pick(session string) int {
	h := fnv.New32a()
	h.Write([]byte(session))
	n := len(c.replicas)
	first := int(h.Sum32() % uint32(n))
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k := 0; k < n; k++ {
		if i := (first + k) % n; c.up[i] {
			return i
		}
	}
	return first
}

func run(bin, dir string, withRedis bool, conc, kills int) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	armDir := func(name string) string { return filepath.Join(dir, "arms", name) }
	for name, cfg := range map[string]string{"a": `{"name":"lex-a","temperature":0.5,"bonus":{"buy":1}}`, "b": `{"name":"lex-b","temperature":2}`} {
		os.MkdirAll(armDir(name), 0o755)
		if err := os.WriteFile(filepath.Join(armDir(name), serve.LexicalConfigFile), []byte(cfg), 0o644); err != nil {
			return nil, err
		}
	}
	c := &cluster{bin: bin, dir: dir}
	n := 1
	name := "standalone (one server, no Redis)"
	if withRedis {
		n = 2
		name = "two replicas sharing Redis (--store-outage local)"
		port := freePort()
		c.redisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		c.redis = &proc{name: "redis", log: filepath.Join(dir, "redis.log"), args: []string{"redis-server", "--port", fmt.Sprint(port),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir}}
		if err := c.redis.start(); err != nil {
			return nil, err
		}
		defer c.redis.signal(syscall.SIGKILL)
		if err := waitRedis(port); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		port := freePort()
		args := []string{bin, "serve", "--arms", "a=" + armDir("a") + ",b=" + armDir("b"), "--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--admin-token", "chaos", "--reward-timeout", "1h", "--logs", filepath.Join(dir, fmt.Sprintf("logs%d", i)), "--log-flush", "5s"}
		if withRedis {
			args = append(args, "--redis", c.redisURL)
		}
		c.ports = append(c.ports, port)
		c.up = append(c.up, false)
		c.replicas = append(c.replicas, &proc{name: fmt.Sprintf("replica%d", i), args: args, log: filepath.Join(dir, fmt.Sprintf("replica%d.log", i))})
		if err := c.startReplica(i); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, p := range c.replicas {
			p.signal(syscall.SIGKILL)
		}
	}()

	r := &result{name: name, redis: withRedis, decisions: map[string]ackDecision{}, rewards: map[string]ackReward{}, rows5xxCauses: map[string]int{}, errors: map[string]int{}}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	post := func(i int, path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		t := time.Now()
		resp, err := client.Post(c.url(i)+path, "application/json", bytes.NewReader(b))
		rec := reqRecord{start: t}
		var out []byte
		if err == nil {
			out, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			rec.code = resp.StatusCode
			if rec.code >= 400 {
				var e serve.ErrorResponse
				json.Unmarshal(out, &e)
				rec.cause = e.Cause
				msg := e.Error
				if i := strings.IndexAny(msg, "\"0123456789"); i > 0 {
					msg = msg[:i]
				}
				mu.Lock()
				r.errors[fmt.Sprintf("%d %s", rec.code, msg)]++
				mu.Unlock()
			}
		}
		rec.latency = time.Since(t)
		mu.Lock()
		r.reqs = append(r.reqs, rec)
		mu.Unlock()
		return rec.code, out
	}
	actions := []string{"click[red shirt]", "click[blue hat]", "click[buy now]", "click[< prev]"}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for e := 0; ; e++ {
				select {
				case <-stop:
					return
				default:
				}
				sid := fmt.Sprintf("c%d-%d", w, e)
				var last serve.ActResponse
				okSteps := 0
				for step := 0; step < 2; step++ {
					i := c.pick(sid)
					code, out := post(i, "/act", serve.ActRequest{SessionID: sid, Instruction: "i want a red shirt, buy it",
						Observation: "results: red shirt, blue hat", AvailableActions: actions})
					if code != 200 {
						if code == 0 {
							time.Sleep(20 * time.Millisecond)
						}
						break
					}
					json.Unmarshal(out, &last)
					mu.Lock()
					r.decisions[last.EventID] = ackDecision{at: time.Now(), replica: i}
					mu.Unlock()
					okSteps++
				}
				if okSteps == 0 {
					continue
				}
				reward := float64(rng.IntN(3)) / 2
				first := time.Now()
				for try := 0; try < 20; try++ {
					i := c.pick(sid)
					code, out := post(i, "/feedback", serve.FeedbackRequest{EventID: last.EventID, Reward: &reward})
					if code == 200 {
						var fb serve.FeedbackResponse
						json.Unmarshal(out, &fb)
						mu.Lock()
						r.rewards[fmt.Sprintf("%s\n%d", sid, fb.Episode)] = ackReward{reward: reward, at: first, replica: i}
						mu.Unlock()
						break
					}
					if code > 0 && code < 500 {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(w)
	}
	mark := func(name string, start time.Time) {
		r.windows = append(r.windows, window{name: name, start: start, end: time.Now()})
	}
	t0 := time.Now()
	time.Sleep(5 * time.Second)
	mark("steady load", t0)
	if withRedis {
		t := time.Now()
		c.redis.signal(syscall.SIGKILL)
		time.Sleep(5 * time.Second)
		mark("Redis killed (kill -9), 5 s down", t)
		t = time.Now()
		if err := c.redis.start(); err != nil {
			return nil, err
		}
		// The replicas write their local state back before Redis serves them again; the
		// next fault waits for that, as an operator would (a replica killed before it has
		// written back loses its outage's rewards from the posteriors).
		took, err := c.waitStoreOK(2 * time.Minute)
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Second)
		mark(fmt.Sprintf("Redis restarted: written back in %.1f s", took.Seconds()), t)
	}
	t := time.Now()
	for k := 0; k < 12; k++ {
		corrupt := k%3 == 2
		lex := filepath.Join(armDir("a"), serve.LexicalConfigFile)
		good, _ := os.ReadFile(lex)
		if corrupt {
			os.WriteFile(lex, []byte("{not json"), 0o644)
		}
		for i := range c.replicas {
			req, _ := http.NewRequest(http.MethodPost, c.url(i)+"/admin/reload", nil)
			req.Header.Set("Authorization", "Bearer chaos")
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		if corrupt {
			os.WriteFile(lex, good, 0o644)
		}
		time.Sleep(250 * time.Millisecond)
	}
	mark("12 reloads per replica, 4 of them corrupt", t)
	victim := len(c.replicas) - 1
	for k := 0; k < kills; k++ {
		time.Sleep(2 * time.Second)
		t := time.Now()
		c.killReplica(victim)
		r.kills = append(r.kills, time.Now())
		if err := c.startReplica(victim); err != nil {
			return nil, err
		}
		time.Sleep(time.Second)
		mark(fmt.Sprintf("replica %d kill -9 #%d and restart", victim, k+1), t)
	}
	t = time.Now()
	time.Sleep(3 * time.Second)
	mark("steady load after the faults", t)
	close(stop)
	wg.Wait()

	// The posteriors, then a graceful stop (the logs are cut), then the logs.
	var arms serve.ArmsResponse
	resp, err := client.Get(c.url(0) + "/arms")
	if err != nil {
		return nil, err
	}
	json.NewDecoder(resp.Body).Decode(&arms)
	resp.Body.Close()
	for _, a := range arms.Arms {
		r.postEpisodes += a.Episodes
		r.postSuccesses += a.Successes
		r.postScore += a.MeanScore * float64(a.Episodes)
	}
	for _, p := range c.replicas {
		p.signal(syscall.SIGTERM)
	}
	r.loggedDecisions, r.loggedRewards = map[string]bool{}, map[string]bool{}
	for i := range c.replicas {
		ld := filepath.Join(dir, fmt.Sprintf("logs%d", i))
		decs, err := decisionlog.ReadDecisions(ld)
		if err != nil {
			return nil, err
		}
		rews, err := decisionlog.ReadRewards(ld)
		if err != nil {
			return nil, err
		}
		for _, d := range decs {
			r.loggedDecisions[d.EventID] = true
		}
		for _, w := range rews {
			r.loggedRewards[fmt.Sprintf("%s\n%d", w.SessionID, w.Episode)] = true
		}
		filepath.WalkDir(ld, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(d.Name(), ".tmp") || strings.HasSuffix(d.Name(), ".wal")) {
				r.orphans++
			}
			return nil
		})
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("replica%d.log", i)))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"msg":"request failed"`) && strings.Contains(line, `"cause":`) && !strings.Contains(line, `/admin/reload`) {
				r.logged5xx++
			}
		}
	}
	for _, a := range r.rewards {
		if a.reward == 1 {
			r.ackSuccesses++
		}
		r.ackScore += a.reward
	}
	// Losses per kill: the acknowledged rows missing from the logs, as the span between the
	// earliest of them and the kill.
	for ki, k := range r.kills {
		lo := k.Add(-5 * time.Second)
		if ki > 0 {
			lo = r.kills[ki-1]
		}
		var firstD, firstR time.Time
		for id, a := range r.decisions {
			if !r.loggedDecisions[id] && a.at.After(lo) && a.at.Before(k.Add(time.Second)) && (firstD.IsZero() || a.at.Before(firstD)) {
				firstD = a.at
			}
		}
		for key, a := range r.rewards {
			if !r.loggedRewards[key] && a.at.After(lo) && a.at.Before(k.Add(time.Second)) && (firstR.IsZero() || a.at.Before(firstR)) {
				firstR = a.at
			}
		}
		span := func(f time.Time) float64 {
			if f.IsZero() {
				return 0
			}
			return math.Max(0, float64(k.Sub(f).Microseconds())/1000)
		}
		r.lostDecisionWindowMS = append(r.lostDecisionWindowMS, span(firstD))
		r.lostRewardWindowMS = append(r.lostRewardWindowMS, span(firstR))
	}
	return r, nil
}

// waitStoreOK waits until every replica's /readyz reports its store ok (the local state
// of an outage written back) and returns how long that took.
func (c *cluster) waitStoreOK(limit time.Duration) (time.Duration, error) {
	t := time.Now()
	for i := range c.replicas {
		for {
			var rr serve.ReadyResponse
			if resp, err := http.Get(c.url(i) + "/readyz"); err == nil {
				json.NewDecoder(resp.Body).Decode(&rr)
				resp.Body.Close()
			}
			if rr.Store.State == serve.StoreOK {
				break
			}
			if time.Since(t) > limit {
				return 0, fmt.Errorf("replica %d: store not ok after %s: %+v", i, limit, rr.Store)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(t), nil
}

func waitRedis(port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := conn.Read(buf)
			conn.Close()
			if bytes.HasPrefix(buf[:n], []byte("+PONG")) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("redis-server did not start")
}

func (r *result) lost() (decisions, rewards int) {
	for id := range r.decisions {
		if !r.loggedDecisions[id] {
			decisions++
		}
	}
	for k := range r.rewards {
		if !r.loggedRewards[k] {
			rewards++
		}
	}
	return
}

func (r *result) fivexx() (n int, byCause map[string]int) {
	byCause = map[string]int{}
	for _, q := range r.reqs {
		if q.code >= 500 {
			n++
			byCause[q.cause]++
		}
	}
	return
}

// ok: every 5xx has a server-side cause and is logged, the posteriors equal the
// acknowledged rewards that were logged, no orphan file, and each kill lost at most 100
// ms of acknowledged rows.
func (r *result) ok() bool {
	n, byCause := r.fivexx()
	if byCause[""] > 0 || byCause[serve.CauseClient] > 0 || r.logged5xx < n || r.orphans > 0 {
		return false
	}
	if r.postEpisodes != r.wantEpisodes() {
		return false
	}
	for i := range r.lostDecisionWindowMS {
		if r.lostDecisionWindowMS[i] > 100 || r.lostRewardWindowMS[i] > 100 {
			return false
		}
	}
	return true
}

// wantEpisodes is what the posteriors must count: with Redis every acknowledged reward
// (Redis holds them, whatever a killed replica's log lost); without, the acknowledged
// rewards less those the kills lost from the log the server rebuilds from.
func (r *result) wantEpisodes() int64 {
	if r.redis {
		return int64(len(r.rewards))
	}
	_, lostR := r.lost()
	return int64(len(r.rewards) - lostR)
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", r.name)
	fmt.Fprintln(w, "| phase | requests | 2xx | 4xx | 5xx by cause | connection errors | max latency | p99 latency |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, win := range r.windows {
		var lat []time.Duration
		ok, c4, conn := 0, 0, 0
		causes := map[string]int{}
		for _, q := range r.reqs {
			if q.start.Before(win.start) || !q.start.Before(win.end) {
				continue
			}
			lat = append(lat, q.latency)
			switch {
			case q.code == 0:
				conn++
			case q.code < 300:
				ok++
			case q.code < 500:
				c4++
			default:
				causes[q.cause]++
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		var maxL, p99 time.Duration
		if len(lat) > 0 {
			maxL, p99 = lat[len(lat)-1], lat[len(lat)*99/100]
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %s | %d | %s | %s |\n", win.name, len(lat), ok, c4, causeList(causes), conn,
			maxL.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
	}
	lostD, lostR := r.lost()
	n, byCause := r.fivexx()
	fmt.Fprintf(w, "\nrequests: %d; 5xx: %d (%s), %d of them in the servers' JSON logs with their cause\n", len(r.reqs), n, causeList(byCause), r.logged5xx)
	fmt.Fprintf(w, "decisions: %d acknowledged, %d logged, %d lost\n", len(r.decisions), len(r.loggedDecisions), lostD)
	fmt.Fprintf(w, "rewards: %d acknowledged, %d logged, %d lost\n", len(r.rewards), len(r.loggedRewards), lostR)
	fmt.Fprintf(w, "loss per kill -9 (ms of acknowledged traffic before the kill, decisions / rewards):")
	for i := range r.lostDecisionWindowMS {
		fmt.Fprintf(w, " %.1f/%.1f", r.lostDecisionWindowMS[i], r.lostRewardWindowMS[i])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "posteriors: %d episodes, %d successes, score sum %.1f; expected %d episodes (acknowledged: %d episodes, %d successes, score sum %.1f)\n",
		r.postEpisodes, r.postSuccesses, r.postScore, r.wantEpisodes(), len(r.rewards), r.ackSuccesses, r.ackScore)
	var errs []string
	for k, v := range r.errors {
		errs = append(errs, fmt.Sprintf("%dx %s", v, k))
	}
	sort.Strings(errs)
	fmt.Fprintf(w, "error replies: %s\n", strings.Join(errs, "; "))
	fmt.Fprintf(w, "orphan files (temporaries, WAL segments) after the graceful stop: %d\n", r.orphans)
	if r.ok() {
		fmt.Fprintln(w, "result: PASS")
	} else {
		fmt.Fprintln(w, "result: FAIL")
	}
}

func causeList(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for k, v := range m {
		if k == "" {
			k = "unknown"
		}
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// throughputRuns measures /act requests per second at concurrency conc of one server with
// lexical arms (the cheapest policy: the log's cost shows most), without and with --logs,
// alternating, and prints the medians and their ratio.
func throughputRuns(bin, baseline, policy, dir string, conc, runs int) error {
	armDir := policy
	if armDir == "" {
		armDir = filepath.Join(dir, "tp-arm")
		os.MkdirAll(armDir, 0o755)
		if err := os.WriteFile(filepath.Join(armDir, serve.LexicalConfigFile), []byte(`{"name":"lex"}`), 0o644); err != nil {
			return err
		}
	}
	body, _ := json.Marshal(serve.ActRequest{SessionID: "S", Instruction: "i want a red cotton shirt under 30 dollars",
		Observation:      strings.Repeat("[button] b0123456789 [button_] soft cotton crew neck shirt in red $19.99 ", 10),
		AvailableActions: []string{"click[b0123456789]", "click[b0123456788]", "click[b0123456787]", "click[next >]", "click[back to search]"}})
	one := func(bin string, logs bool, k int) (float64, error) {
		port := freePort()
		args := []string{bin, "serve", "--arms", "a=" + armDir, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--reward-timeout", "1h"}
		if logs {
			args = append(args, "--logs", filepath.Join(dir, fmt.Sprintf("tp-logs-%d", k)))
		}
		p := &proc{name: "server", args: args, log: filepath.Join(dir, "tp.log")}
		if err := p.start(); err != nil {
			return 0, err
		}
		defer p.signal(syscall.SIGTERM)
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitHTTP(url+"/readyz", 60*time.Second); err != nil {
			return 0, err
		}
		if resp, err := http.Post(url+"/act", "application/json", bytes.NewReader(body)); err == nil {
			resp.Body.Close() // warm-up
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
		var n, bad int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		deadline := time.Now().Add(8 * time.Second)
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					b := bytes.Replace(body, []byte(`"S"`), []byte(fmt.Sprintf(`"w%d-%d"`, w, i/5)), 1)
					resp, err := client.Post(url+"/act", "application/json", bytes.NewReader(b))
					mu.Lock()
					if err != nil || resp.StatusCode != 200 {
						bad++
					} else {
						n++
					}
					mu.Unlock()
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}(w)
		}
		wg.Wait()
		if bad > 0 {
			return 0, fmt.Errorf("%d failed requests", bad)
		}
		return float64(n) / 8, nil
	}
	var without, with, old []float64
	for k := 0; k < runs; k++ {
		a, err := one(bin, false, k)
		if err != nil {
			return err
		}
		b, err := one(bin, true, k)
		if err != nil {
			return err
		}
		without, with = append(without, a), append(with, b)
		fmt.Printf("run %d: %.0f requests/s without logs, %.0f with the WAL", k+1, a, b)
		if baseline != "" {
			c, err := one(baseline, true, 1000+k)
			if err != nil {
				return err
			}
			old = append(old, c)
			fmt.Printf(", %.0f with the baseline binary's logs", c)
		}
		fmt.Println()
	}
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	mw, mo := median(without), median(with)
	fmt.Printf("\n| /act at concurrency %d, %d runs of 8 s | median requests/s |\n| --- | --- |\n| no logs | %.0f |\n| --logs (WAL, fsync every 100 ms) | %.0f |\n| ratio WAL / no logs | %.3f |\n",
		conc, runs, mw, mo, mo/mw)
	if baseline != "" {
		mb := median(old)
		fmt.Printf("| --logs, baseline binary | %.0f |\n| ratio WAL / baseline logs | %.3f |\n", mb, mo/mb)
	}
	return nil
}
