import Testing

/// Every end-to-end suite runs inside this one, one test at a time: each starts real processes, and on a
/// 2-core machine their timing is only meaningful without the others competing.
@Suite(.serialized) enum EndToEndTests {}
