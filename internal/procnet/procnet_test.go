package procnet

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

const sample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   2: 0B00007F:95DF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:8CA0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
`

func TestParse(t *testing.T) {
	got, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	// 0x1388 = 5000 listens; 0x1F90 = 8080 is an established connection, not a listener.
	if !slices.Equal(got, []int{5000}) {
		t.Errorf("got %v, want [5000]", got)
	}
}

func TestListeningSelf(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	got, err := Listening(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, port) {
		t.Errorf("Listening(self) = %v, missing %d", got, port)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		ports []int
		want  string
	}{
		{nil, "the process listens on no TCP port"},
		{[]int{5000}, "the process listens on 5000"},
		{[]int{22, 5000}, "the process listens on 22, 5000"},
	} {
		if got := Describe(tc.ports, 8080); got != tc.want {
			t.Errorf("Describe(%v) = %q, want %q", tc.ports, got, tc.want)
		}
	}
}
