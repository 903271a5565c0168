package redistest

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of masters without replicas, on loopback.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' host:port, the seed list a client takes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// StartCluster runs n cluster-enabled redis-servers on free loopback ports
// and joins them with redis-cli --cluster create, then waits until every
// node reports cluster_state:ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is needed for this test (apt-get install redis-tools): %v", err)
	}
	c := &Cluster{}
	for range n {
		// A cluster node needs a TCP port and a bus port; ask the kernel
		// for two free ones. Another process could take one before
		// redis-server binds it: then the node fails to start and says so.
		port, bus := freePort(t), freePort(t)
		dir := shortTempDir(t)
		s := start(t, dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", dir+"/nodes.conf", "--cluster-node-timeout", "2000")
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		s.waitReady(t)
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); !c.ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not reach cluster_state:ok:\n%s", c.Nodes[0].Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Cluster) ok() bool {
	for _, n := range c.Nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
	}
	return true
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
