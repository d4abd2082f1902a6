import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Top: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "top",
            abstract: "A live full-terminal view of the whole cluster: nodes, GPUs with utilisation bars, running jobs. q quits.")

        @OptionGroup var client: ClientOptions

        @Option(help: ArgumentHelp("Seconds between refreshes.", valueName: "S"))
        var interval: Double = 2

        func validate() throws {
            if !(0.2...3600).contains(interval) { throw ValidationError("--interval must be 0.2-3600 s") }
        }

        func run() async throws {
            let terminal = RawTerminal.enter()
            defer { terminal.leave() }
            while true {
                let frame: String
                do {
                    frame = Self.render(try await client.client.queue(), width: terminal.columns, height: terminal.rows)
                } catch {
                    frame = "mgpu top — \(CLIError.from(error, client: client).message)\n\nretrying every \(Int(interval)) s; q quits"
                }
                terminal.draw(frame)
                if terminal.waitForQuit(seconds: interval) { return }
            }
        }

        static func bar(_ fraction: Double, width: Int) -> String {
            let filled = max(0, min(width, Int((fraction * Double(width)).rounded())))
            return "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "]"
        }

        static func render(_ q: QueueResponse, width: Int, height: Int) -> String {
            var held: [String: JobInfo] = [:]
            for job in q.jobs where job.state == .running { for p in job.parts { for g in p.gpus { held["\(p.nodeId):\(g)"] = job } } }
            let running = q.jobs.filter { $0.state == .running }, pending = q.jobs.filter { $0.state == .pending }
            let up = q.nodes.filter { $0.state == .up }
            let free = up.reduce(0) { $0 + $1.freeGPUCount }, total = q.nodes.reduce(0) { $0 + $1.gpus.count }
            var lines = ["mgpu top — \(up.count)/\(q.nodes.count) nodes up, \(free)/\(total) GPUs free, \(running.count) running, \(pending.count) pending   (q quits)", ""]
            let barWidth = max(10, min(30, width - 60))
            for node in q.nodes {
                guard node.state == .up, let t = node.telemetry else {
                    lines.append("\(node.id)  DOWN  last heartbeat \(Int(node.secondsSinceHeartbeat))s ago")
                    continue
                }
                let cpu = t.cpuPercent ?? 0
                let ram = t.memoryTotalMB.map { total in Double(t.memoryUsedMB ?? 0) / Double(max(1, total)) } ?? 0
                lines.append("\(node.id)  UP\(node.simulated ? " (simulated)" : "")  CPU \(bar(cpu / 100, width: 10)) \(String(format: "%3.0f%%", cpu))  RAM \(bar(ram, width: 10)) \(Nodes.gb(t.memoryUsedMB ?? 0))/\(Nodes.gb(t.memoryTotalMB ?? 0)) GB")
                for gpu in node.gpus {
                    let r = t.gpus.first { $0.index == gpu.index }
                    let util = r?.utilization ?? 0
                    var who = "free"
                    if let job = held["\(node.id):\(gpu.index)"] {
                        who = "\(job.id) \(job.user) \(Terminal.safe(job.name))" + (job.idleSince != nil ? " (idle)" : "")
                    }
                    else if node.outsideGPUs.contains(gpu.index) { who = "in use outside mgpu" }
                    let mem = r.map { "\(Nodes.gb($0.memoryUsedMB ?? 0))/\(Nodes.gb($0.memoryTotalMB ?? gpu.memoryMB)) GB" } ?? "-"
                    let temp = r?.temperatureC.map { String(format: "%2.0f°C", $0) } ?? "  - "
                    lines.append("  gpu\(gpu.index) \(bar(util / 100, width: barWidth)) \(String(format: "%3.0f%%", util))  \(mem)  \(temp)  \(who)")
                }
            }
            lines.append("")
            lines.append("RUNNING")
            for job in running {
                let idle = job.idleSince.map { "  IDLE \(formatElapsed(q.now - $0))" } ?? ""
                lines.append("  \(job.id)  \(job.user)  \(Terminal.safe(job.name))  \(job.placementText)  \(formatElapsed(q.now - (job.startTime ?? q.now)))\(idle)")
            }
            if !pending.isEmpty { lines.append("PENDING \(pending.count): " + pending.prefix(5).map { "\($0.id) (\($0.note ?? ""))" }.joined(separator: ", ")) }
            return lines.prefix(max(1, height - 1)).map { String($0.prefix(width)) }.joined(separator: "\n")
        }
    }
}

/// The terminal in raw mode on the alternate screen, restored on leave.
struct RawTerminal {
    var saved = termios()
    var isTerminal = false
    var rows = 40
    var columns = 120

    static func enter() -> RawTerminal {
        var t = RawTerminal()
        t.isTerminal = isatty(0) == 1
        if t.isTerminal {
            tcgetattr(0, &t.saved)
            var raw = t.saved
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
            tcsetattr(0, TCSANOW, &raw)
        }
        if let size = ForegroundSession.terminalSize {
            t.rows = size.rows
            t.columns = size.columns
        }
        FileHandle.standardOutput.write(Data("\u{1B}[?1049h\u{1B}[?25l".utf8))
        return t
    }

    func draw(_ frame: String) {
        FileHandle.standardOutput.write(Data(("\u{1B}[H\u{1B}[2J" + frame.replacingOccurrences(of: "\n", with: "\r\n")).utf8))
    }

    /// Waits up to `seconds` for a key; true when it was q (or Ctrl-C / Ctrl-D).
    func waitForQuit(seconds: Double) -> Bool {
        var pfd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let ready = poll(&pfd, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            guard ready > 0 else { continue }
            var byte: UInt8 = 0
            let n = read(0, &byte, 1)
            if n <= 0 { return !isTerminal ? false : true }
            if byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 || byte == 4 { return true }
        }
        return false
    }

    func leave() {
        FileHandle.standardOutput.write(Data("\u{1B}[?25h\u{1B}[?1049l".utf8))
        if isTerminal {
            var saved = self.saved
            tcsetattr(0, TCSANOW, &saved)
        }
    }
}
