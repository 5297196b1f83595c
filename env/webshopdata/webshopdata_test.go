package webshopdata

import "testing"

// The counts are those WebShop's data files have (its README and ours).
func TestEmbeddedFiles(t *testing.T) {
	g := HumanGoals()
	if len(g) != NumHumanGoals {
		t.Fatalf("%d human goals, want %d", len(g), NumHumanGoals)
	}
	if g[0] != "i need a long clip-in hair extension which is natural looking" {
		t.Errorf("goal 0 = %q, want WebShop's first test goal", g[0])
	}
	qm := GoalQueryMap()
	n := 0
	for _, qs := range qm {
		n += len(qs)
	}
	if len(qm) != 1506 || n != 2197 {
		t.Errorf("query map: %d instructions, %d queries; want 1,506 and 2,197", len(qm), n)
	}
	m := MinedAttributes()
	none, phrases := 0, map[string]bool{}
	for _, e := range m {
		if len(e.Attributes) == 0 {
			none++
		}
		for _, a := range e.Attributes {
			phrases[a] = true
		}
	}
	if len(m) != 1000 || none != 185 || len(phrases) != 598 {
		t.Errorf("mined attributes: %d products, %d without attributes, %d phrases; want 1,000, 185, 598", len(m), none, len(phrases))
	}
	if c := Colors(); len(c) == 0 || c[0] != "alabaster" {
		t.Errorf("colors: %v", c)
	}
	for i, want := range map[int]string{0: "test", 499: "test", 500: "dev", 1499: "dev", 1500: "train", 12086: "train"} {
		if got := Split(i); got != want {
			t.Errorf("Split(%d) = %s, want %s", i, got, want)
		}
	}
}
