package testenv_test

import (
	"context"
	"fmt"
	"os"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// A server outside a single test, e.g. shared by a package from TestMain.
func ExampleRunPostgres() {
	pg, stop, err := testenv.RunPostgres(context.Background(), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "start postgres:", err)
		return
	}
	fmt.Println("connect with", pg.URL("postgres"))
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop postgres:", err)
	}
}
