package storetest

import (
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

func TestMem(t *testing.T) {
	TestCounter(t, func(t *testing.T, o CounterOptions) quota.Counter {
		return quota.NewLocal(NewMemUsage(o.KeepUsage), time.Hour)
	})
}
