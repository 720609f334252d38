// Package wallet is the wallet service: balances per account and asset,
// holds that reserve funds for open orders, deposits and withdrawals, and
// the settlement of trades.
//
// It serves tradex.wallet.v1.WalletService (GetBalance, ListBalances,
// Deposit, Withdraw, HoldBalance, ReleaseHold, WatchBalances), consumes
// engine.event.v1 (durable consumer wallet-settlement, ordered per
// instrument) and produces wallet.balance.changed.v1.<account>, which is
// its journal.
//
// The state is event-sourced: every change is a BalanceChanged entry in the
// journal, appended with an expected-last-subject-sequence check (one
// atomic batch per request or engine event, so a trade is never half
// applied), and the in-memory Book changes only after the append is
// acknowledged. At start the Book is rebuilt from the latest snapshot (object
// store Config.SnapshotBucket) and the journal after it. Amounts are int64
// fixed-point at a scale per asset (Config.Scales, default 8) and decimal
// strings at the API. See docs/services/wallet.md.
package wallet
