package webshop

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shopagent/datasets"
	"shopagent/env"
)

// chromiumPath is Debian's Chromium (make deps installs it).
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (make deps installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// do runs browser actions with a deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: eval %s: %v", js, err)
	}
	return v
}

// atStep waits for the session page after n env steps.
func atStep(n int) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#page[data-step="%d"]`, n)))
}

// pickGoal returns a goal (index in the split) whose product has options.
func pickGoal(t *testing.T, srv *Server) (int, *env.Product) {
	t.Helper()
	shop := srv.cfg.Shop
	for i, g := range srv.Goals() {
		if p, ok := shop.Catalog.ByASIN(g.ASIN); ok && len(shop.Catalog.Products[p].Options) > 0 {
			return i, &shop.Catalog.Products[p]
		}
	}
	t.Fatal("no goal whose product has options")
	return 0, nil
}

// TestBrowserEpisode drives headless Chromium through a whole episode:
// start a goal, search, open the goal's product, pick options, read the
// description, buy; then checks the recorded Parquet file against an env
// replay of the same actions and steps through it in the replay view.
func TestBrowserEpisode(t *testing.T) {
	rec := t.TempDir()
	srv, ts := newTestServer(t, Config{RecordDir: rec, ReplayDir: rec})
	ctx := newBrowser(t)
	gi, prod := pickGoal(t, srv)
	goal := srv.Goals()[gi]

	do(t, ctx, "start page",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("goal-input")),
		chromedp.SetValue(chromedp.ID("goal-input"), strconv.Itoa(gi)),
		chromedp.Click(chromedp.ID("start")),
		chromedp.WaitVisible(chromedp.ID("search-input")),
	)
	if got := eval[string](t, ctx, `document.getElementById("instruction-text").textContent`); got != goal.Instruction {
		t.Fatalf("goal page instruction %q, want %q", got, goal.Instruction)
	}
	query := strings.ToLower(prod.Title)
	do(t, ctx, "search",
		chromedp.SendKeys(chromedp.ID("search-input"), query),
		chromedp.Click(chromedp.ID("search-submit")),
		atStep(1),
		chromedp.WaitVisible(chromedp.ID("results")),
	)
	asin := strings.ToLower(prod.ASIN)
	productID := buttonID("product-", asin)
	if !eval[bool](t, ctx, fmt.Sprintf(`!!document.getElementById(%q)`, productID)) {
		t.Fatalf("the goal's product %s is not on the first results page", prod.ASIN)
	}
	actions := []string{env.Search(query), env.Click(asin)}
	do(t, ctx, "open the product",
		chromedp.Click(chromedp.ID(productID)),
		atStep(2),
		chromedp.WaitVisible(chromedp.ID("item")),
	)
	// One option per group: the goal's value where the group has it, else
	// the group's last value.
	want := map[string]bool{}
	for g, grp := range prod.Options {
		pick := len(grp.Values) - 1
		for v, val := range grp.Values {
			for _, o := range goal.Options {
				if strings.EqualFold(o.Value, val) {
					pick = v
				}
			}
		}
		id := fmt.Sprintf("opt-%d-%d", g, pick)
		action := env.Click(strings.ToLower(grp.Values[pick]))
		actions = append(actions, action)
		do(t, ctx, "pick "+action, chromedp.Click(chromedp.ID(id)), atStep(len(actions)))
		want[id] = true
	}
	// Every picked option shows as selected; no other does, unless the same
	// value is in two groups (env selects by value).
	checkSelected := func(when string) {
		got := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("button.option.selected")).map(b => b.id)`)
		for _, id := range got {
			if !want[id] {
				t.Errorf("%s: option %s shown selected, not picked", when, id)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: selected options %v, picked %v", when, got, want)
		}
	}
	checkSelected("after picking")
	actions = append(actions, "click[description]", "click[< prev]")
	do(t, ctx, "description and back",
		chromedp.Click(chromedp.ID("btn-description")),
		atStep(len(actions)-1),
		chromedp.WaitVisible(chromedp.ID("subpage")),
		chromedp.Click(chromedp.ID("btn-prev")),
		atStep(len(actions)),
		chromedp.WaitVisible(chromedp.ID("item")),
	)
	checkSelected("back from the description")
	actions = append(actions, "click[buy now]")
	do(t, ctx, "buy", chromedp.Click(chromedp.ID("btn-buy")), chromedp.WaitVisible(chromedp.ID("reward")))
	shown := eval[string](t, ctx, `document.getElementById("reward").textContent`)

	// The recorded file.
	files, err := datasets.Files(rec)
	if err != nil || len(files) != 1 {
		t.Fatalf("recorded files: %v %v", files, err)
	}
	rows, err := datasets.ReadSteps(files[0])
	if err != nil {
		t.Fatal(err)
	}
	reward := replayReward(t, srv.cfg.Shop, goal, srv.cfg.Env, actions)
	checkRows(t, rows, actions, reward, srv.GoalID(gi))
	if shown != formatReward(reward) {
		t.Errorf("done page shows reward %q, the env gives %v", shown, reward)
	}
	t.Logf("episode %s: %d steps, reward %v", rows[0].EpisodeID, len(rows), reward)

	// The replay view steps through it.
	do(t, ctx, "replay file list",
		chromedp.Navigate(ts.URL+"/replay"),
		chromedp.WaitVisible(chromedp.CSS("a.file-link")),
		chromedp.Click(chromedp.CSS("a.file-link")),
		chromedp.WaitVisible(chromedp.CSS("a.episode-link")),
		chromedp.Click(chromedp.CSS("a.episode-link")),
		chromedp.WaitVisible(chromedp.ID("step-action")),
	)
	for i, a := range actions {
		if got := eval[string](t, ctx, `document.getElementById("step-index").textContent + " " + document.getElementById("step-action").textContent`); got != fmt.Sprintf("%d %s", i, a) {
			t.Fatalf("replay step %d shows %q, want action %q", i, got, a)
		}
		if obs := eval[string](t, ctx, `document.getElementById("step-observation").textContent`); obs != rows[i].Observation {
			t.Errorf("replay step %d observation differs from the file", i)
		}
		if i+1 < len(actions) {
			do(t, ctx, "replay next", chromedp.Click(chromedp.ID("replay-next")),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`a.step-link[href$="step=%d"]`, i+1))),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr.current a[href$="step=%d"]`, i+1))))
		}
	}
	if eval[bool](t, ctx, `!!document.getElementById("replay-next")`) {
		t.Error("the last step offers a next link")
	}
	if got := eval[string](t, ctx, `document.getElementById("final-reward").textContent`); got != formatReward(reward) {
		t.Errorf("replay final reward %q, want %v", got, reward)
	}
}
