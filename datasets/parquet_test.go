package datasets

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// sampleSteps builds episodes covering every column: NaN and finite floats,
// empty, nil and long lists, unicode text.
func sampleSteps(episodes, stepsPer int) []Step {
	var out []Step
	for e := 0; e < episodes; e++ {
		for s := 0; s < stepsPer; s++ {
			st := Step{
				EpisodeID:   fmt.Sprintf("ep-%03d", e),
				Source:      Sources()[e%len(Sources())],
				Policy:      "p" + fmt.Sprint(e%2),
				GoalID:      int64(e*10 - 1),
				Instruction: "i need a café table ☕, and price lower than 40.00 dollars",
				Step:        int32(s),
				Page:        "results",
				Observation: strings.Repeat("obs [SEP] ", s+1),
				Action:      "click[b0abcdefg1]",
				ActionIndex: int32(s - 1),
				Logprob:     -0.5 * float64(s),
				Value:       math.NaN(),
				Reward:      0,
				Done:        s == stepsPer-1,
				FinalReward: float64(e%3) / 2,
			}
			switch s % 3 {
			case 0:
				st.AvailableActions = nil
			case 1:
				st.AvailableActions = []string{}
			default:
				st.AvailableActions = []string{"click[back to search]", "click[next >]", "click[b0abcdefg1]", ""}
			}
			if e%2 == 1 {
				st.FinalReward = math.NaN()
				st.Logprob = math.Inf(-1)
			}
			if st.Done {
				st.Reward = st.FinalReward
			}
			out = append(out, st)
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steps.parquet")
	want := sampleSteps(7, 5)
	w, err := Create(path, WriterOptions{RowGroupRows: 4}) // several row groups
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(want); i += 3 {
		if err := w.Write(want[i:min(i+3, len(want))]...); err != nil {
			t.Fatal(err)
		}
	}
	if w.Rows() != int64(len(want)) {
		t.Fatalf("Rows = %d, want %d", w.Rows(), len(want))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Write(want[0]); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	got, err := ReadSteps(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameStep(got[i], want[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Episodes come back grouped, in order.
	var ids []string
	err = ReadEpisodes(path, func(ep []Step) error {
		for j, s := range ep {
			if s.EpisodeID != ep[0].EpisodeID || int(s.Step) != j {
				t.Errorf("episode %s: row %d has id %s step %d", ep[0].EpisodeID, j, s.EpisodeID, s.Step)
			}
		}
		if len(ep) != 5 {
			t.Errorf("episode %s has %d rows", ep[0].EpisodeID, len(ep))
		}
		ids = append(ids, ep[0].EpisodeID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 7 || ids[0] != "ep-000" || ids[6] != "ep-006" {
		t.Fatalf("episodes %v", ids)
	}
	// An error from the callback stops the read and comes back as is.
	stop := errors.New("enough")
	n := 0
	err = ReadEpisodes(path, func([]Step) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("callback error: got %v after %d calls", err, n)
	}
}

func TestReadManyRows(t *testing.T) {
	// More rows than one read batch, episodes across batch boundaries.
	path := filepath.Join(t.TempDir(), "many.parquet")
	want := sampleSteps(130, 7)
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	var got []Step
	n := 0
	if err := ReadEpisodes(path, func(ep []Step) error { n++; got = append(got, ep...); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 130 || len(got) != len(want) {
		t.Fatalf("%d episodes, %d rows", n, len(got))
	}
	for i := range want {
		if !sameStep(got[i], want[i]) {
			t.Fatalf("row %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestWriterCrashSafety(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "demos.parquet")
	w, err := Create(path, WriterOptions{RowGroupRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(sampleSteps(3, 3)...); err != nil {
		t.Fatal(err)
	}
	// Not closed (as if the process died): nothing at the final path, and
	// the directory reader does not see the temporary file.
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("final path exists before Close: %v", err)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 0 {
		t.Fatalf("Files = %v, %v; want none", files, err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("Abort left %d files", len(ents))
	}

	// An existing file is replaced only when the new one is complete.
	if err := WriteFile(path, sampleSteps(1, 2)); err != nil {
		t.Fatal(err)
	}
	w, err = Create(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(sampleSteps(4, 2)...)
	if got, err := ReadSteps(path); err != nil || len(got) != 2 {
		t.Fatalf("old file while rewriting: %d rows, %v", len(got), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSteps(path); err != nil || len(got) != 8 {
		t.Fatalf("new file: %d rows, %v", len(got), err)
	}
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	if err := WriteFile(good, sampleSteps(20, 6)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated.parquet":   data[:len(data)*2/3],
		"short.parquet":       data[:3],
		"empty.parquet":       nil,
		"not-parquet.parquet": []byte("episode_id,source\nx,human\n"),
	}
	// Garbage in the middle of the pages, footer intact.
	mangled := append([]byte(nil), data...)
	for i := 8; i < len(mangled)/2; i += 7 {
		mangled[i] ^= 0x5a
	}
	cases["mangled.parquet"] = mangled
	// Sparse damage to the data pages only.
	pages := append([]byte(nil), data...)
	for i := 40; i < len(pages)/3; i += 97 {
		pages[i] ^= 0xff
	}
	cases["pages.parquet"] = pages
	for name, b := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadSteps(p)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	_, err = ReadSteps(filepath.Join(dir, "truncated.parquet"))
	if !strings.Contains(err.Error(), "truncated or corrupt") {
		t.Errorf("truncated file error is not clear: %v", err)
	}
	// A directory with a corrupt file fails naming it.
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), ".parquet") {
		t.Errorf("ReadDir over corrupt files: %v", err)
	}
	if _, err := ReadSteps(filepath.Join(dir, "missing.parquet")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestWrongSchema(t *testing.T) {
	type other struct {
		EpisodeID string `parquet:"episode_id"`
		Step      string `parquet:"step"`
	}
	p := filepath.Join(t.TempDir(), "other.parquet")
	f, _ := os.Create(p)
	w := parquet.NewGenericWriter[other](f)
	w.Write([]other{{"a", "b"}})
	w.Close()
	f.Close()
	_, err := ReadSteps(p)
	if err == nil || !strings.Contains(err.Error(), "not a trajectory file") {
		t.Fatalf("wrong schema: %v", err)
	}
}

func TestReadDirSorted(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"b.parquet", "a.parquet", "c.parquet"} {
		steps := sampleSteps(1, 2)
		for j := range steps {
			steps[j].EpisodeID = fmt.Sprintf("%s-%d", name, i)
		}
		if err := WriteFile(filepath.Join(dir, name), steps); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub.parquet"), 0o755)
	var ids []string
	if err := ReadDirEpisodes(dir, func(ep []Step) error { ids = append(ids, ep[0].EpisodeID); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"a.parquet-1", "b.parquet-0", "c.parquet-2"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("episodes %v, want %v", ids, want)
	}
	all, err := ReadDir(dir)
	if err != nil || len(all) != 6 {
		t.Fatalf("ReadDir: %d rows, %v", len(all), err)
	}
}

// Files written before the forced column existed still read, as not forced; the
// column round-trips.
func TestForcedColumn(t *testing.T) {
	type oldStep struct {
		EpisodeID        string   `parquet:"episode_id"`
		Source           Source   `parquet:"source"`
		Policy           string   `parquet:"policy"`
		GoalID           int64    `parquet:"goal_id"`
		Instruction      string   `parquet:"instruction"`
		Step             int32    `parquet:"step"`
		Page             string   `parquet:"page"`
		Observation      string   `parquet:"observation"`
		AvailableActions []string `parquet:"available_actions,list"`
		Action           string   `parquet:"action"`
		ActionIndex      int32    `parquet:"action_index"`
		Logprob          float64  `parquet:"logprob"`
		Value            float64  `parquet:"value"`
		Reward           float64  `parquet:"reward"`
		Done             bool     `parquet:"done"`
		FinalReward      float64  `parquet:"final_reward"`
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "old.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[oldStep](f)
	if _, err := w.Write([]oldStep{{EpisodeID: "e1", Source: SourceExpert, Action: "click[x]", AvailableActions: []string{"click[x]"}, Done: true}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	got, err := ReadSteps(p)
	if err != nil || len(got) != 1 || got[0].Forced || got[0].Action != "click[x]" {
		t.Fatalf("old file: %+v %v", got, err)
	}
	q := filepath.Join(dir, "new.parquet")
	if err := WriteFile(q, []Step{{EpisodeID: "e2", Source: SourceGenerated, Action: "click[buy now]", Forced: true, Done: true}}); err != nil {
		t.Fatal(err)
	}
	got, err = ReadSteps(q)
	if err != nil || len(got) != 1 || !got[0].Forced {
		t.Fatalf("new file: %+v %v", got, err)
	}
}
