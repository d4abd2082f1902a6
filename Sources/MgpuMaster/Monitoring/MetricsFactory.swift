import CoreMetrics
import Prometheus

/// swift-metrics into the master's Prometheus registry, with names and help texts a Prometheus linter accepts.
///
/// Libraries (Hummingbird's MetricsMiddleware) name their metrics as they like (`hb.requests`, no HELP);
/// `promtool check metrics` wants counters ending in `_total`, base units in the name and a HELP line on each.
/// Known names get an `mgpu_http_` name and a help text; any other gets its sanitised name (`_total` added to
/// counters) and a help text naming where it came from.
struct MgpuMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    /// Unregistering is the same as Prometheus' own factory's.
    let plain: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.plain = PrometheusMetricsFactory(registry: registry)
    }

    static let known: [String: (name: String, help: String)] = [
        "hb.requests": ("mgpu_http_requests_total", "HTTP requests answered, by route, method and status"),
        "hb.request.errors": ("mgpu_http_request_errors_total", "HTTP requests answered with an error, by route, method and status"),
        "http.server.request.duration": ("mgpu_http_request_duration_seconds", "Time to answer HTTP requests, by route, method and status"),
        "http.server.active_requests": ("mgpu_http_active_requests", "HTTP requests being answered, by method"),
    ]

    /// The exported name and help text of a swift-metrics label.
    static func describe(_ label: String, counter: Bool) -> MetricNameDescriptor {
        if let known = known[label] { return MetricNameDescriptor(metricName: known.name, unitName: "", helpText: known.help) }
        var name = String(label.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        if counter && !name.hasSuffix("_total") { name += "_total" }
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: "\(label) (reported by a library through swift-metrics)")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let d = Self.describe(label, counter: true)
        return registry.makeCounter(descriptor: d, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        let d = Self.describe(label, counter: true)
        return registry.makeCounter(descriptor: d, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        let d = Self.describe(label, counter: false)
        guard aggregate else { return registry.makeGauge(descriptor: d, labels: dimensions) }
        return registry.makeValueHistogram(descriptor: d, labels: dimensions, buckets: plain.defaultValueHistogramBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        let d = Self.describe(label, counter: false)
        return registry.makeGauge(descriptor: d, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let d = Self.describe(label, counter: false)
        return registry.makeDurationHistogram(descriptor: d, labels: dimensions, buckets: plain.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
