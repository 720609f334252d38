package decimal_test

import (
	"fmt"

	"github.com/tradex-mesh/tradex/internal/decimal"
)

// The notional of an order on BTCUSDT: prices have 2 digits, quantities 5.
func Example() {
	price, _ := decimal.Parse("50000.5", 2)     // 5000050
	qty, _ := decimal.ParseNumber("10.5e-3", 5) // a JSON number from the REST edge: 1050
	notional, _ := decimal.Mul(price, 2, qty, 5, 7)
	fmt.Println(decimal.Format(price, 2), decimal.Format(qty, 5), decimal.FormatTrim(notional, 7))

	_, err := decimal.Parse("0.001", 2)
	fmt.Println(err)
	// Output:
	// 50000.50 0.01050 525.00525
	// decimal "0.001": more fractional digits than the scale (3 digits, scale 2)
}
