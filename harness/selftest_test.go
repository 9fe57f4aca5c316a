package harness

import "testing"

func TestScenariosAreValidConfigs(t *testing.T) {
	opts := SelftestOptions{Seeds: 1, Store: t.TempDir()}
	seen := map[string]bool{}
	for _, s := range Scenarios() {
		if seen[s.Name()] {
			t.Errorf("two scenarios named %q", s.Name())
		}
		seen[s.Name()] = true
		if _, err := s.config(opts); err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
	}
}
