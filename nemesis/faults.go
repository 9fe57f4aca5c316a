package nemesis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// maxDelay bounds delay and jitter, as the node's admin API does.
const maxDelay = api.MaxDelayMS * time.Millisecond

// LinkFault degrades links without cutting them: every packet and stream is
// delayed by Delay ± Jitter (uniformly) and lost with probability Loss.
// Delays are applied in whole milliseconds.
type LinkFault struct {
	Delay  time.Duration // mean added delay
	Jitter time.Duration // the delay varies uniformly by ± Jitter
	Loss   float64       // probability in [0, 1] that a packet or stream is lost
}

// String renders f as the arguments of a start-link step, e.g.
// "delay=200ms jitter=50ms loss=10%".
func (f LinkFault) String() string {
	var s string
	add := func(kv string) {
		if s != "" {
			s += " "
		}
		s += kv
	}
	if f.Delay != 0 {
		add("delay=" + f.Delay.String())
	}
	if f.Jitter != 0 {
		add("jitter=" + f.Jitter.String())
	}
	if f.Loss != 0 {
		add("loss=" + formatLoss(f.Loss))
	}
	return s
}

// check verifies that f is within what the admin API accepts and does
// something.
func (f LinkFault) check() error {
	switch {
	case f.Delay < 0 || f.Delay > maxDelay:
		return fmt.Errorf("delay %s not in [0, %s]", f.Delay, maxDelay)
	case f.Jitter < 0 || f.Jitter > maxDelay:
		return fmt.Errorf("jitter %s not in [0, %s]", f.Jitter, maxDelay)
	case !(f.Loss >= 0 && f.Loss <= 1):
		return fmt.Errorf("loss %v not in [0, 1] (0%%..100%%)", f.Loss)
	case f.Delay < time.Millisecond && f.Jitter < time.Millisecond && f.Loss == 0:
		return errors.New("a link fault needs a delay (≥ 1ms), a jitter or a loss")
	}
	return nil
}

// formatLoss renders a probability as a percentage when that reads back
// exactly, e.g. "10%", and as a fraction otherwise.
func formatLoss(p float64) string {
	pct := strconv.FormatFloat(math.Round(p*100*1e6)/1e6, 'f', -1, 64)
	if back, err := strconv.ParseFloat(pct, 64); err == nil && back/100 == p {
		return pct + "%"
	}
	return strconv.FormatFloat(p, 'f', -1, 64)
}

// emptySet is the encoded fault set of a healed node.
const emptySet = `{"links":{}}`

// faultState is the set of network faults in force: at most one partition
// and one link fault, which compose.
type faultState struct {
	grudge    Grudge          // nil when no partition is in force
	link      *LinkFault      // nil when no link fault is in force
	linkNodes map[string]bool // the nodes whose links link degrades
}

// faultSet computes node's fault set: an "in" drop for every node its grudge
// names, and the link fault on "out" towards every peer when node or the
// peer is a link-fault target. Faulting only the sending side keeps each
// directed link degraded once. gossip maps a node to its gossip address.
func (s faultState) faultSet(node string, nodes []string, gossip func(string) string) api.FaultSet {
	fs := api.FaultSet{Links: map[string]api.LinkFaults{}}
	for _, peer := range nodes {
		if peer == node {
			continue
		}
		var l api.LinkFaults
		for _, d := range s.grudge[node] {
			if d == peer {
				l.In = &api.DirFaults{Drop: true}
			}
		}
		if s.link != nil && (s.linkNodes[node] || s.linkNodes[peer]) {
			l.Out = &api.DirFaults{
				DelayMS:  int(s.link.Delay.Round(time.Millisecond) / time.Millisecond),
				JitterMS: int(s.link.Jitter.Round(time.Millisecond) / time.Millisecond),
				Loss:     s.link.Loss,
			}
		}
		if l.In != nil || l.Out != nil {
			fs.Links[gossip(peer)] = l
		}
	}
	return fs
}

// encode returns the canonical JSON of fs: map keys sorted, so equal sets
// encode equally.
func encode(fs api.FaultSet) (string, error) {
	b, err := json.Marshal(fs)
	if err != nil {
		return "", fmt.Errorf("encode fault set: %w", err)
	}
	return string(b), nil
}
