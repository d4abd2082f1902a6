import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Nodes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "nodes",
            abstract: "List nodes (like sinfo): state, GPUs free/allocated/in use outside mgpu, CPU and RAM; -v for every GPU.")

        @OptionGroup var client: ClientOptions

        @Flag(name: .shortAndLong, help: "One line per GPU too: utilisation, memory, temperature, power, who holds it.")
        var verbose = false

        @Flag(help: "Print the nodes as JSON, for scripts.")
        var json = false

        func run() async throws {
            let queue = try await client.call { try await $0.queue() }
            if json {
                try printJSON(queue.nodes)
                return
            }
            print(Self.render(queue, verbose: verbose))
        }


        static func render(_ queue: QueueResponse, verbose: Bool) -> String {
            guard !queue.nodes.isEmpty else { return "No nodes registered." }
            var held: [String: JobInfo] = [:]
            for job in queue.jobs where job.state == .running {
                for part in job.parts { for g in part.gpus { held["\(part.nodeId):\(g)"] = job } }
            }
            var table = Table(header: ["NODE", "STATE", "GPUS", "FREE", "ALLOC", "OUTSIDE", "CPU%", "RAM", "HEARTBEAT"])
            var lines: [String] = []
            for node in queue.nodes {
                let t = node.telemetry
                let ram = t.flatMap { t in t.memoryUsedMB.map { used in "\(gb(used))/\(gb(t.memoryTotalMB ?? 0)) GB" } } ?? "-"
                var state = node.state == .up ? "UP" : (node.left == true ? "DOWN (left)" : "DOWN")
                if let drained = node.drainState { state = node.state == .up ? drained : state + ", " + drained }
                table.rows.append([node.id, state, "\(node.gpus.count)\(node.simulated ? " (sim)" : "")",
                                   node.state == .up ? "\(node.freeGPUCount)" : "-", "\(node.allocatedGPUs.count)",
                                   "\(node.outsideGPUs.count)", t?.cpuPercent.map { String(format: "%.0f", $0) } ?? "-", ram,
                                   "\(Int(node.secondsSinceHeartbeat))s ago"])
            }
            // Why each drained node is out, by whom and since when.
            let drained = queue.nodes.compactMap { node in
                node.drain.map { "\(node.id) \(node.drainState ?? "DRAINED"): \(Terminal.safe($0.reason)) (by \($0.by), since \(formatClock($0.at, now: queue.now)))" }
            }
            // Unhealthy GPUs, with what the node says is wrong.
            let sick = queue.nodes.flatMap { node in
                (node.telemetry?.gpus ?? []).compactMap { r in r.unhealthy.map { "\(node.id) gpu\(r.index) UNHEALTHY: \(Terminal.safe($0)) (no new jobs)" } }
            }
            let notes = (drained + sick).isEmpty ? "" : "\n\n" + (drained + sick).joined(separator: "\n")
            guard verbose else { return table.render() + notes }
            var gpus = Table(header: ["NODE", "GPU", "NAME", "UTIL", "MEMORY", "TEMP", "POWER", "HELD BY"])
            for node in queue.nodes {
                for gpu in node.gpus {
                    let r = node.telemetry?.gpus.first { $0.index == gpu.index }
                    var who = "free"
                    if let job = held["\(node.id):\(gpu.index)"] { who = "\(job.id) \(job.user) \(job.name)" }
                    else if node.outsideGPUs.contains(gpu.index) {
                        let p = r?.processes.first { $0.jobId == nil }
                        who = "in use outside mgpu" + (p.map { " (pid \($0.pid) \($0.user))" } ?? "")
                    }
                    if let why = r?.unhealthy { who = "UNHEALTHY: \(Terminal.safe(why))" + (who == "free" ? "" : "; " + who) }
                    if node.state == .down { who = "node DOWN" }
                    let mem = r.flatMap { r in r.memoryUsedMB.map { "\(gb($0))/\(gb(r.memoryTotalMB ?? gpu.memoryMB)) GB" } } ?? "-"
                    gpus.rows.append([node.id, "\(gpu.index)\(gpu.physicalIndex.map { " (phys \($0))" } ?? "")",
                                      gpu.name + (gpu.simulated ? " (simulated)" : ""),
                                      r?.utilization.map { String(format: "%.0f%%", $0) } ?? "-", mem,
                                      r?.temperatureC.map { String(format: "%.0f°C", $0) } ?? "-",
                                      r?.powerW.map { String(format: "%.0f W", $0) } ?? "-", who])
                }
            }
            lines.append(table.render() + notes)
            lines.append("")
            lines.append(gpus.render())
            return lines.joined(separator: "\n")
        }

        static func gb(_ mb: Int) -> String { String(format: "%.1f", Double(mb) / 1024) }
    }
}
