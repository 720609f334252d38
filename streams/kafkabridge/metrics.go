package kafkabridge

import "github.com/prometheus/client_golang/prometheus"

// metrics are the bridge's Prometheus series, per topic and direction.
type metrics struct {
	messages    *prometheus.CounterVec // carried across
	skipped     *prometheus.CounterVec // not carried: came from the other side, or already there
	deadLetters *prometheus.CounterVec // imports that went to dlq.<topic>
	errs        *prometheus.CounterVec // failed attempts (retried)
	lag         *prometheus.GaugeVec   // messages not carried yet, as last seen
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_kafka_bridge_messages_total",
			Help: "Messages the Kafka bridge carried, by topic and direction (export: JetStream to Kafka, import: Kafka to JetStream).",
		}, []string{"topic", "direction"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_kafka_bridge_skipped_total",
			Help: "Messages the Kafka bridge did not carry, by reason: origin (they came from the other side) or duplicate (already carried before a restart).",
		}, []string{"topic", "direction", "reason"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_kafka_bridge_dead_letters_total",
			Help: "Kafka records the bridge could not store and wrote to dlq.<topic> with the reason.",
		}, []string{"topic"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_kafka_bridge_errors_total",
			Help: "Failed attempts of the Kafka bridge (each retried), by topic and direction.",
		}, []string{"topic", "direction"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradex_kafka_bridge_lag",
			Help: "Messages waiting to cross the Kafka bridge as last seen: for export the durable consumer's pending messages, for import the consumer group's lag.",
		}, []string{"topic", "direction"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.skipped, m.deadLetters, m.errs, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
