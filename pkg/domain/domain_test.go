package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The services depend on the domain types, not on the store or the bus: none
// of them may pull in the MongoDB or Kafka driver. (Package limit keeps its
// Redis implementation beside its in-memory one, as an engine package does,
// so Redis is not on this list.)
func TestServicesImportNoStorageOrKafkaDriver(t *testing.T) {
	services := []string{"domain", "account", "chat", "conversation", "group", "receipt", "transfer"}
	for _, svc := range services {
		out, err := exec.Command("go", "list", "-deps", "easychat/pkg/"+svc).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", svc, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, driver := range []string{"go.mongodb.org/mongo-driver", "github.com/segmentio/kafka-go", "easychat/pkg/store", "easychat/pkg/bus"} {
				if dep == driver || strings.HasPrefix(dep, driver+"/") {
					t.Errorf("package %s depends on %s", svc, dep)
				}
			}
		}
	}
}
