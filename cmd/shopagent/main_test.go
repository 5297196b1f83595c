package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"shopagent/env/shopgen"
	"strings"
	"sync"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

var shopDirOnce struct {
	sync.Once
	dir string
}

// testShopDir generates a small built-in shop (30 test, 30 dev and 90 train
// goals of WebShop, generator seed 3) once for the package's tests.
func testShopDir(t *testing.T) string {
	t.Helper()
	shopDirOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shopagent-cli-test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, "", "env", "generate", "--goals", shopgen.SampleGoals(30, 30, 90), "--seed", "3", "--quiet", "--out", dir); err != nil {
			t.Fatal(err)
		}
		shopDirOnce.dir = dir
	})
	return shopDirOnce.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shopDirOnce.dir != "" {
		os.RemoveAll(shopDirOnce.dir)
	}
	os.Exit(code)
}

func TestEnvStepJSONLines(t *testing.T) {
	dir := testShopDir(t)
	out, err := run(t, "", "env", "step", "--data", dir, "--goal", "2", "--show-goal")
	if err != nil {
		t.Fatal(err)
	}
	var g0 stepLine
	if err := json.Unmarshal([]byte(out), &g0); err != nil || g0.Goal == nil {
		t.Fatalf("goal line: %v %s", err, out)
	}
	query := "search[" + g0.Goal.Instruction + "]"
	out, err = run(t, "", "env", "step", "--data", dir, "--goal", "2", "--obs", "text", "--show-goal",
		"--action", query, "--action", "click[nope]", "--action", "click[back to search]")
	if err == nil || !strings.Contains(err.Error(), `"click[nope]" did nothing`) || !strings.Contains(err.Error(), "not clickable on the results page") {
		t.Fatalf("an invalid action must end env step with an error that says why; got %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines, got %d:\n%s", len(lines), out)
	}
	var first, second, third stepLine
	for i, dst := range []*stepLine{&first, &second, &third} {
		if err := json.Unmarshal([]byte(lines[i]), dst); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	if first.Page != "search" || first.Goal == nil || !strings.HasPrefix(first.Text, "WebShop [SEP] Instruction: [SEP] ") {
		t.Errorf("first line: %+v", first)
	}
	if second.Page != "results" || second.Valid == nil || !*second.Valid || len(second.AvailableActions) < 2 {
		t.Errorf("second line: %+v", second)
	}
	if third.Valid == nil || *third.Valid || third.Page != "results" || !strings.Contains(third.Reason, "not clickable") {
		t.Errorf("an unknown click must be a no-op with a reason: %+v", third)
	}
	// A full purchase ends with the reward components.
	var asin string
	for _, a := range second.AvailableActions {
		if strings.HasPrefix(a, "click[b0") && len(a) == len("click[b0xxxxxxxx]") {
			asin = a
			break
		}
	}
	out, err = run(t, "", "env", "step", "--data", dir, "--goal", "2", "--obs", "text_rich",
		"--action", query, "--action", asin, "--action", "click[buy now]")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var last stepLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.Components == nil || last.Purchase == nil || last.Reward != last.Components.Reward {
		t.Errorf("last line: %s", lines[len(lines)-1])
	}
	if _, err := run(t, "", "env", "step", "--data", dir, "--goal", "100000"); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("goal out of range: %v", err)
	}
}

func TestEnvReward(t *testing.T) {
	dir := t.TempDir()
	goal := `{"asin":"B1","name":"Organic Green Tea Bags","query":"tea","product_category":"Grocery › Tea","instruction_text":"i want organic tea",
		"attributes":["organic","caffeine free"],"goal_options":{"size":"pack of 6"},"price_upper":30}`
	product := `{"asin":"B1","Title":"Organic Green Tea Bags","query":"tea","product_category":"Grocery › Tea","Attributes":["organic"],
		"BulletPoints":["Caffeine free"],"Description":"","pricing":[20.0]}`
	gp, pp := filepath.Join(dir, "goal.json"), filepath.Join(dir, "product.json")
	os.WriteFile(gp, []byte(goal), 0o644)
	os.WriteFile(pp, []byte(product), 0o644)
	out, err := run(t, "", "env", "reward", "--goal", gp, "--product", pp, "--options", `{"size":"pack of 6"}`)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Reward        float64 `json:"reward"`
		RType         float64 `json:"r_type"`
		NumAttMatches int     `json:"num_att_matches"`
		RPrice        bool    `json:"r_price"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err, out)
	}
	// "size pack of 6" vs the purchased "pack of 6" matches, as in WebShop.
	if info.Reward != 1 || info.RType != 1 || info.NumAttMatches != 2 || !info.RPrice {
		t.Errorf("reward: %s", out)
	}
	out, err = run(t, "", "env", "reward", "--goal", gp, "--product", pp, "--price", "99")
	if err != nil || !strings.Contains(out, `"r_price": false`) {
		t.Errorf("price override: %v %s", err, out)
	}
	os.WriteFile(gp, []byte(`{"attributes": [`), 0o644)
	if _, err := run(t, "", "env", "reward", "--goal", gp, "--product", pp); err == nil || !strings.Contains(err.Error(), "goal.json") {
		t.Errorf("corrupt goal: %v", err)
	}
}

func TestEvalRuleAndPlay(t *testing.T) {
	dir := testShopDir(t)
	js := filepath.Join(t.TempDir(), "eval.json")
	out, err := run(t, "", "eval", "--agent", "rule", "--split", "test", "--data", dir, "--json", js)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "agent rule on test") || !strings.Contains(out, "success rate") {
		t.Errorf("eval output: %s", out)
	}
	b, err := os.ReadFile(js)
	if err != nil || !bytes.Contains(b, []byte(`"score"`)) {
		t.Errorf("eval json: %v %s", err, b)
	}
	if _, err := run(t, "", "eval", "--agent", "nope", "--data", dir); err == nil {
		t.Error("unknown agent: no error")
	}
	// Play: search by typing words, pick the first result by number, buy.
	out, err = run(t, "red\n2\n5\n", "env", "play", "--data", dir, "--obs", "text")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var sawResults, sawDone bool
	for sc.Scan() {
		sawResults = sawResults || strings.Contains(sc.Text(), "==== results page ====")
		sawDone = sawDone || strings.Contains(sc.Text(), "==== done after")
	}
	if !sawResults || !sawDone {
		t.Errorf("play transcript:\n%s", out)
	}
}

func TestEvalShardsAddUp(t *testing.T) {
	dir := testShopDir(t)
	tmp := t.TempDir()
	read := func(name string, args ...string) evalSums {
		t.Helper()
		js := filepath.Join(tmp, name)
		if _, err := run(t, "", append([]string{"eval", "--agent", "rule", "--split", "test", "--data", dir, "--json", js}, args...)...); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Sums evalSums }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v.Sums
	}
	all := read("all.json")
	var sum evalSums
	for k := range 3 {
		s := read(fmt.Sprintf("s%d.json", k), "--shard", fmt.Sprintf("%d/3", k))
		if s.Episodes == 0 || s.Episodes > all.Episodes/3+1 {
			t.Fatalf("shard %d/3 has %d of %d episodes", k, s.Episodes, all.Episodes)
		}
		sum.Episodes += s.Episodes
		sum.RewardSum += s.RewardSum
		sum.Successes += s.Successes
		sum.StepsSum += s.StepsSum
	}
	if sum.Episodes != all.Episodes || sum.Successes != all.Successes || sum.StepsSum != all.StepsSum ||
		math.Abs(sum.RewardSum-all.RewardSum) > 1e-9 {
		t.Fatalf("shards sum to %+v, whole split %+v", sum, all)
	}
	for _, bad := range []string{"3/3", "-1/2", "1", "a/b", "0/0"} {
		if _, err := run(t, "", "eval", "--agent", "rule", "--data", dir, "--shard", bad); err == nil {
			t.Errorf("--shard %q accepted", bad)
		}
	}
}
