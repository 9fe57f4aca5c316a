package lab

import (
	"bufio"
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// linkKey is a directed link between two hosts.
type linkKey struct{ from, to netip.Addr }

// delaySpec is a link's delay: delay ± jitter, uniformly.
type delaySpec struct{ delay, jitter time.Duration }

// draw returns one packet's delay, never negative.
func (d delaySpec) draw() time.Duration {
	v := d.delay
	if d.jitter > 0 {
		v += rand.N(2*d.jitter+1) - d.jitter
	}
	return max(v, 0)
}

// queueLen is how many packets the kernel holds for the delayer before it
// drops new ones: at 200 ms of delay it sustains 40,000 packets a second.
const queueLen = 8192

// delayer holds the packets the rules queue (NFQUEUE) for their link's
// delay, then lets them through. Netem is not needed, nor root: only a
// netfilter queue in the lab's own namespace.
type delayer struct {
	nf     *nfqueue.Nfqueue
	queue  uint16
	cancel context.CancelFunc
	delays atomic.Pointer[map[linkKey]delaySpec]

	mu      sync.Mutex
	pending packetHeap
	wake    chan struct{}
	done    chan struct{}
}

// startDelayer binds netfilter queue num and starts releasing packets.
func startDelayer(num uint16) (*delayer, error) {
	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      num,
		MaxPacketLen: 20, // the IPv4 header: its addresses name the link
		MaxQueueLen:  queueLen,
		Copymode:     nfqueue.NfQnlCopyPacket,
		AfFamily:     unix.AF_INET,
		Flags:        nfqueue.NfQaCfgFlagGSO, // a GSO packet is queued whole
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("lab: open netfilter queue %d: %w", num, err)
	}
	_ = nf.SetOption(netlink.NoENOBUFS, true)
	_ = nf.Con.SetReadBuffer(8 << 20)
	d := &delayer{nf: nf, queue: num, wake: make(chan struct{}, 1), done: make(chan struct{})}
	empty := map[linkKey]delaySpec{}
	d.delays.Store(&empty)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	err = nf.RegisterWithErrorFunc(ctx, d.hook, func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		return 0 // e.g. a full socket buffer: keep going
	})
	if err != nil {
		cancel()
		nf.Close()
		return nil, fmt.Errorf("lab: bind netfilter queue %d: %w", num, err)
	}
	go d.release(ctx)
	return d, nil
}

// setDelays replaces the delay of every link.
func (d *delayer) setDelays(m map[linkKey]delaySpec) { d.delays.Store(&m) }

// hook receives each queued packet.
func (d *delayer) hook(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	var spec delaySpec
	if a.Payload != nil && len(*a.Payload) >= 20 && (*a.Payload)[0]>>4 == 4 {
		p := *a.Payload
		k := linkKey{netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))}
		spec = (*d.delays.Load())[k]
	}
	wait := spec.draw()
	if wait <= 0 {
		_ = d.nf.SetVerdict(id, nfqueue.NfAccept)
		return 0
	}
	d.mu.Lock()
	heap.Push(&d.pending, packet{id: id, due: time.Now().Add(wait)})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return 0
}

// release lets each held packet through when its delay has passed.
func (d *delayer) release(ctx context.Context) {
	defer close(d.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		now := time.Now()
		var due []uint32
		for d.pending.Len() > 0 && !d.pending[0].due.After(now) {
			due = append(due, heap.Pop(&d.pending).(packet).id)
		}
		next := time.Hour
		if d.pending.Len() > 0 {
			next = d.pending[0].due.Sub(now)
		}
		d.mu.Unlock()
		for _, id := range due {
			_ = d.nf.SetVerdict(id, nfqueue.NfAccept)
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// queueDrops reads the kernel's count of packets this queue dropped, full
// or refused, from /proc/net/netfilter/nfnetlink_queue.
func (d *delayer) queueDrops() uint64 {
	f, err := os.Open("/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// queue peer_portid total copy_mode copy_range queue_dropped user_dropped id_seq 1
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || fields[0] != strconv.Itoa(int(d.queue)) {
			continue
		}
		q, _ := strconv.ParseUint(fields[5], 10, 64)
		u, _ := strconv.ParseUint(fields[6], 10, 64)
		return q + u
	}
	return 0
}

// close stops the delayer; packets still held are dropped with the queue.
func (d *delayer) close() {
	d.cancel()
	<-d.done
	d.nf.Close()
}

// packet is one held packet.
type packet struct {
	id  uint32
	due time.Time
}

// packetHeap orders held packets by release time.
type packetHeap []packet

func (h packetHeap) Len() int           { return len(h) }
func (h packetHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h packetHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)        { *h = append(*h, x.(packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
