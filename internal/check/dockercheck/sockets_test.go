package dockercheck

import (
	"net/netip"
	"strings"
	"testing"
)

// Lines as a container whose process listens on 5000 and dials
// 198.51.100.1:443 writes them.
const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B00007F:8513 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 54464 1 00000000f7725441 100 0 0 10 0
   1: 020018AC:9004 016433C6:01BB 02 00000001:00000000 01:0000002E 00000000     0        0 54193 2 0000000021119ff3 100 0 0 10 -1
   2: 020018AC:9005 030018AC:1F90 02 00000001:00000000 01:0000002E 00000000     0        0 54194 2 0000000021119ff3 100 0 0 10 -1
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
`

func TestParseSockets(t *testing.T) {
	v4, err := parseSockets(strings.NewReader(procTCP))
	if err != nil {
		t.Fatal(err)
	}
	v6, err := parseSockets(strings.NewReader(procTCP6))
	if err != nil {
		t.Fatal(err)
	}
	all := append(v4, v6...)
	if got, want := describeListeners(listeners(all)), "the process listens on 127.0.0.1:8080, [::]:5000"; got != want {
		t.Errorf("listeners: got %q, want %q", got, want)
	}
	out := outgoing(all, netip.MustParsePrefix("172.24.0.0/16"))
	if len(out) != 1 || out[0].String() != "198.51.100.1:443" {
		t.Errorf("outgoing: got %v, want [198.51.100.1:443] (the sibling 172.24.0.3:8080 is not the internet)", out)
	}
}
