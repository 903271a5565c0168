package milter

import (
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
)

// TestPanicInCallbackTempfailsOnlyThatConnection makes the sealer panic at
// end of message: the client must get a temporary failure, the
// reservations must be released, and the next connection must be served.
func TestPanicInCallbackTempfailsOnlyThatConnection(t *testing.T) {
	sock, engine, logs := serve(t, nil, Settings{IDHeader: "X-Relay-ID", Seal: func(Stamp) (string, error) { panic("boom") }})
	for i := range 3 { // limit 2: a leaked reservation would refuse the third
		_, act, err := transaction(t, sock)
		if err != nil || act == nil || act.Type != gomilter.ActionTempFail {
			t.Fatalf("try %d: %v, %v; want a temporary failure", i, act, err)
		}
		if d := waitIdle(t, engine); d.Reserved != 0 || d.Used != 0 {
			t.Fatalf("try %d: after the panic %+v, want nothing held or counted", i, d)
		}
	}
	if !strings.Contains(logs.String(), "panic in milter callback") {
		t.Fatal("panic not logged")
	}
}
