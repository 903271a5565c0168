package milter

import (
	"log/slog"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/internal/syncutil"
)

// TestLibraryWarningsGoToTheLog: go-milter's own warnings reach our log
// once LogLibraryWarnings is called, and NewServer leaves them alone.
func TestLibraryWarningsGoToTheLog(t *testing.T) {
	prev := gomilter.LogWarning
	t.Cleanup(func() { gomilter.LogWarning = prev })
	logs := &syncutil.Buffer{}
	LogLibraryWarnings(slog.New(slog.NewTextHandler(logs, nil)))
	serve(t, nil, Settings{}) // a server does not take the warnings over
	gomilter.LogWarning("Error reading milter command: %v", "EOF")
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "Error reading milter command: EOF") {
		t.Fatalf("go-milter's warning is not in the log:\n%s", got)
	}
}
