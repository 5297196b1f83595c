package serve

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ArmSpec names an arm and the directory its policy loads from.
type ArmSpec struct {
	Name, Dir string
}

var armNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ParseArmSpecs parses "name=DIR,name=DIR,...". Names are unique, 1 to 64 characters of
// letters, digits, '_', '.', '-' (they name log partitions and Redis keys).
func ParseArmSpecs(s string) ([]ArmSpec, error) {
	var out []ArmSpec
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, dir, ok := strings.Cut(part, "=")
		name, dir = strings.TrimSpace(name), strings.TrimSpace(dir)
		if !ok || dir == "" {
			return nil, fmt.Errorf("serve: arm %q: want name=DIR", part)
		}
		if !armNameRE.MatchString(name) {
			return nil, fmt.Errorf("serve: arm name %q: want 1 to 64 letters, digits, '_', '.' or '-'", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("serve: arm name %q is used twice", name)
		}
		seen[name] = true
		out = append(out, ArmSpec{Name: name, Dir: dir})
	}
	if len(out) == 0 {
		return nil, errors.New("serve: no arms (want name=DIR,name=DIR,...)")
	}
	return out, nil
}

// arm is one served arm: its policy, swappable by a reload.
type arm struct {
	spec ArmSpec

	mu       sync.RWMutex
	policy   Policy
	info     PolicyInfo
	loadedAt time.Time
	loadErr  error
}

// act scores with the current policy (a reload waits for in-flight calls).
func (a *arm) act(instruction, observation string, actions []string) (Decision, PolicyInfo, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.policy == nil {
		return Decision{}, PolicyInfo{}, fmt.Errorf("arm %s has no loaded policy", a.spec.Name)
	}
	d, err := a.policy.Act(instruction, observation, actions)
	return d, a.info, err
}

// actionCache returns the statistics of the arm's action-encoding cache, if its policy
// has one.
func (a *arm) actionCache() (ActionCacheStats, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if c, ok := a.policy.(interface {
		ActionCache() (ActionCacheStats, bool)
	}); ok {
		return c.ActionCache()
	}
	return ActionCacheStats{}, false
}

// batchStats returns the counters of the arm's dynamic batcher, if its policy has one.
func (a *arm) batchStats() (BatchStats, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if b, ok := a.policy.(*Batcher); ok {
		return b.Stats(), true
	}
	return BatchStats{}, false
}

func (a *arm) loaded() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.policy != nil
}

// load loads the arm's policy from its directory and swaps it in; on failure the old
// policy (if any) keeps serving and the error is returned.
func (a *arm) load(loader Loader) (PolicyInfo, error) {
	p, err := safeLoad(loader, a.spec.Dir)
	if err != nil {
		a.mu.Lock()
		a.loadErr = err
		a.mu.Unlock()
		return PolicyInfo{}, fmt.Errorf("arm %s: %w", a.spec.Name, err)
	}
	info := p.Info()
	if info.Name == "" {
		info.Name = a.spec.Name
	}
	if info.Dir == "" {
		info.Dir = a.spec.Dir
	}
	a.mu.Lock()
	old := a.policy
	a.policy, a.info, a.loadedAt, a.loadErr = p, info, time.Now(), nil
	a.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return info, nil
}

// safeLoad calls the loader, turning a panic into an error.
func safeLoad(loader Loader, dir string) (p Policy, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("loader panicked: %v", r)
		}
	}()
	p, err = loader(dir)
	if err == nil && p == nil {
		err = errors.New("loader returned no policy")
	}
	return p, err
}

func (a *arm) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.policy != nil {
		_ = a.policy.Close()
		a.policy = nil
	}
}
