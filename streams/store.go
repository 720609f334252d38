package streams

import (
	"fmt"
	"regexp"
	"slices"
)

// StoreKind says whether a store is a key-value bucket or an object store.
type StoreKind int

const (
	// KeyValue is a JetStream KV bucket: small values by key, with
	// revisions and compare-and-set.
	KeyValue StoreKind = iota + 1
	// ObjectStore is a JetStream object store: large values (snapshots)
	// chunked over messages.
	ObjectStore
)

// String names the kind.
func (k StoreKind) String() string {
	switch k {
	case KeyValue:
		return "kv"
	case ObjectStore:
		return "object store"
	default:
		return fmt.Sprintf("StoreKind(%d)", int(k))
	}
}

// Store is a KV bucket or object store of the catalog: like a topic, it is
// declared once, with its owner and durability, and opened by name
// ([Client.KV], [Client.Objects]); a service cannot open a store the
// catalog does not list.
type Store struct {
	// Name is the bucket name: lower-case words joined by underscores,
	// starting with "tradex_".
	Name string
	// Kind is KeyValue or ObjectStore.
	Kind StoreKind
	// Owner is the service that writes it.
	Owner string
	// Description says what it holds.
	Description string
	// Profile is Financial (state a service cannot rebuild from a topic:
	// kept, file storage) or Config (file storage, small) or Snapshot
	// (file storage; losing it costs a longer rebuild, nothing else).
	Profile Profile
	// History is how many revisions of a key a KV bucket keeps (1 to 64);
	// ignored for object stores.
	History int
}

// Store names of DefaultCatalog.
const (
	StoreInstruments        = "tradex_instruments"
	StoreConfig             = "tradex_config"
	StoreOrders             = "tradex_orders"
	StoreMatchingSnapshots  = "tradex_matching_snapshots"
	StoreWalletSnapshots    = "tradex_wallet_snapshots"
	StoreMarketDataSnapshot = "tradex_marketdata_snapshots"
	StoreAuth               = "tradex_auth"
	StoreUserProfiles       = "tradex_user_profiles"
)

// defaultStores are the stores of DefaultCatalog.
func defaultStores() []Store {
	return []Store{
		{Name: StoreInstruments, Kind: KeyValue, Owner: "metadata", Profile: Config, History: 64,
			Description: "metadata: instruments by symbol"},
		{Name: StoreConfig, Kind: KeyValue, Owner: "metadata", Profile: Config, History: 64,
			Description: "metadata: configuration values by key"},
		{Name: StoreOrders, Kind: KeyValue, Owner: "order", Profile: Financial, History: 1,
			Description: "order: orders, client order ids and applied engine sequences"},
		{Name: StoreMatchingSnapshots, Kind: KeyValue, Owner: "matching", Profile: Snapshot, History: 1,
			Description: "matching: latest order book snapshot per instrument"},
		{Name: StoreWalletSnapshots, Kind: ObjectStore, Owner: "wallet", Profile: Snapshot,
			Description: "wallet: state snapshots"},
		{Name: StoreMarketDataSnapshot, Kind: ObjectStore, Owner: "marketdata", Profile: Snapshot,
			Description: "marketdata: books, trades and candles snapshots"},
		{Name: StoreAuth, Kind: KeyValue, Owner: "auth", Profile: Financial, History: 1,
			Description: "auth: users, email index, sessions, API keys and signing keys (secrets encrypted)"},
		{Name: StoreUserProfiles, Kind: KeyValue, Owner: "user", Profile: Financial, History: 1,
			Description: "user: profiles built from auth.user.v1"},
	}
}

// Stores returns every store of the catalog in catalog order.
func (c *Catalog) Stores() []Store { return slices.Clone(c.stores) }

// Store returns the named store, or an error wrapping ErrUnknownStore.
func (c *Catalog) Store(name string) (Store, error) {
	i := slices.IndexFunc(c.stores, func(s Store) bool { return s.Name == name })
	if i < 0 {
		return Store{}, fmt.Errorf("%w %q", ErrUnknownStore, name)
	}
	return c.stores[i], nil
}

// WithStores returns a copy of the catalog that also declares stores.
func (c *Catalog) WithStores(stores ...Store) (*Catalog, error) {
	out := catalogOf(c.topics...)
	out.stores = slices.Clone(c.stores)
	for _, s := range stores {
		if err := validateStore(s); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out.stores, func(o Store) bool { return o.Name == s.Name }) {
			return nil, fmt.Errorf("%w: store %q listed twice", ErrInvalidConfig, s.Name)
		}
		out.stores = append(out.stores, s)
	}
	return out, nil
}

var storeName = regexp.MustCompile(`^tradex(_[a-z0-9]+)+$`)

func validateStore(s Store) error {
	switch {
	case !storeName.MatchString(s.Name):
		return fmt.Errorf("%w: store name %q: want tradex_<words>", ErrInvalidConfig, s.Name)
	case s.Kind != KeyValue && s.Kind != ObjectStore:
		return fmt.Errorf("%w: store %s: unknown kind %d", ErrInvalidConfig, s.Name, s.Kind)
	case s.Owner == "" || s.Description == "":
		return fmt.Errorf("%w: store %s: owner and description are required", ErrInvalidConfig, s.Name)
	case s.Profile != Financial && s.Profile != Config && s.Profile != Snapshot:
		return fmt.Errorf("%w: store %s: profile %s: want financial, config or snapshot", ErrInvalidConfig, s.Name, s.Profile)
	case s.Kind == KeyValue && (s.History < 1 || s.History > 64):
		return fmt.Errorf("%w: store %s: history %d: want 1 to 64", ErrInvalidConfig, s.Name, s.History)
	}
	return nil
}
