import AsyncHTTPClient
import Foundation
import Logging
import MgpuCore
import MgpuWire
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Job notifications (`--notify URL`): the master hands them over here and goes on; `NotifierService` posts them, a
/// few at a time, with retries and timeouts. Scheduling never waits for a receiver.
public final class Notifier: Sendable {
    public struct Message: Sendable {
        public var url: String
        public var event: JobEvent
    }

    let stream: AsyncStream<Message>
    let continuation: AsyncStream<Message>.Continuation

    /// At most `backlog` notifications wait; past it the oldest are dropped (a receiver that is down must not grow
    /// the master's memory without bound).
    public init(backlog: Int = 10_000) {
        (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(backlog))
    }

    public func send(_ event: JobEvent, to url: String) {
        continuation.yield(Message(url: url, event: event))
    }
}

/// Posts what the `Notifier` is given: JSON, no redirects followed, 5 s to connect, 10 s in all, 3 tries (1 s, then 4 s
/// apart), at most 8 at once.
public struct NotifierService: Service {
    let notifier: Notifier
    let logger: Logger
    var retryDelays: [Double] = [1, 4]

    public init(notifier: Notifier, logger: Logger) {
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let encoder = JSONEncoder()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for await message in notifier.stream {
                    if inFlight >= 8 {
                        await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    group.addTask { await deliver(message, client: client, encoder: encoder) }
                }
            }
        }
        try? await client.shutdown()
    }

    func deliver(_ message: Notifier.Message, client: HTTPClient, encoder: JSONEncoder) async {
        let metadata: Logger.Metadata = ["job": "\(message.event.id)", "event": "\(message.event.event)"]
        guard JobEvent.validURL(message.url), let body = try? encoder.encode(message.event) else { return }
        for attempt in 0...retryDelays.count {
            if attempt > 0 {
                try? await Task.sleep(for: .milliseconds(Int64(retryDelays[attempt - 1] * 1000)))
                if Task.isCancelled { return }
            }
            var request = HTTPClientRequest(url: message.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "mgpu")
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await client.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 64 << 10)
                if (200..<300).contains(response.status.code) {
                    logger.info("notification sent", metadata: metadata.merging(["status": "\(response.status.code)"]) { a, _ in a })
                    return
                }
                logger.warning("notification refused", metadata: metadata.merging(["status": "\(response.status.code)", "attempt": "\(attempt + 1)"]) { a, _ in a })
            } catch {
                logger.warning("notification failed: \(error)", metadata: metadata.merging(["attempt": "\(attempt + 1)"]) { a, _ in a })
            }
        }
        logger.error("notification given up", metadata: metadata)
    }
}
