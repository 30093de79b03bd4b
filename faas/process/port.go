package process

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Replica ports come from below the kernel's ephemeral range: a port the
// kernel hands out for outgoing connections (Kafka, HTTP clients, tests) can
// be taken between our probe and the replica's bind, a port below the range
// only by another program binding it on purpose.
const (
	portFloor       = 10000
	defaultEphemLow = 32768
	probeAttempts   = 64
)

// FreePort picks an unused TCP port for a replica, probed the way the
// replica binds it (all interfaces). A collision after the probe is still
// possible in theory; the runtime then replaces the replica.
func FreePort() (int, error) {
	hi := ephemeralLow()
	for range probeAttempts {
		port := portFloor + rand.IntN(hi-portFloor)
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	// Everything below the range is busy: fall back to the kernel's choice.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux);
// elsewhere, or if it is unreadable or odd, the IANA default.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemLow
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return defaultEphemLow
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= portFloor+1000 {
		return defaultEphemLow
	}
	return lo
}
