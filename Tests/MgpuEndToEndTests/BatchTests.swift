import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct BatchTests {
        /// A Slurm user's script: #SBATCH lines become options (one mgpu lacks is a warning naming it), #MGPU lines
        /// are mgpu's own, options on the command line win, words after the script are its arguments, and it runs
        /// under its own #! interpreter (bash: `[[ ]]` works).
        @Test func sbatchReadsTheScriptsOptions() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let out = cluster.dir + "/batch.out"
            let script = cluster.dir + "/train.sh"
            try """
                #!/bin/bash
                #SBATCH --job-name=trainer
                #SBATCH --gres=gpu:2 --time=0:05:00   # two GPUs, five minutes
                #SBATCH --mem=4G
                #MGPU --nice 10

                if [[ "$1" == "a" ]]; then echo "args: $# $1|$2" > \(out); fi
                echo "gpus: $CUDA_VISIBLE_DEVICES" >> \(out)
                #SBATCH --gpus=1
                """.write(toFile: script, atomically: true, encoding: .utf8)
            let submitted = try await cluster.mgpu(["sbatch", "--time", "2", script, "a", "b c"])
            #expect(submitted.status == 0, "\(submitted.stderr)")
            #expect(submitted.stderr.contains("train.sh:4: #SBATCH --mem=4G is not supported by mgpu; ignored"), "\(submitted.stderr)")
            let line = try #require(submitted.stdout.split(separator: "\n").first)
            let id = try #require(JobID(String(line.split(separator: " ").last ?? "")))
            let done = try await cluster.waitForState(id, [.completed, .failed])
            #expect(done.state == .completed && done.name == "trainer" && done.nice == 10, "\(done.reason ?? "")")
            #expect(done.timeLimit == 120, "--time on the command line wins over the script's")
            #expect(done.request.totalGPUs == 2, "a #SBATCH line after the first command is not a directive")
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "args: 2 a|b c\ngpus: 0,1\n")

            // A directive mgpu refuses is one line naming the script.
            try "#!/bin/sh\n#SBATCH --time=soon\ntrue\n".write(toFile: script, atomically: true, encoding: .utf8)
            let bad = try await cluster.mgpu(["sbatch", script])
            #expect(bad.status != 0 && bad.stderr.contains("train.sh") && bad.stderr.contains("--time"), "\(bad.stderr)")
            let missing = try await cluster.mgpu(["sbatch", cluster.dir + "/nope.sh"])
            #expect(missing.status == 2 && missing.stderr.contains("cannot read the script"), "\(missing.stderr)")
        }
    }
}

extension EndToEndTests.BatchTests {
    /// `--output` / `--error` with Slurm's patterns: the files are written on the node by the job itself; `mgpu logs`
    /// has nothing unless `--keep-logs`, which keeps both and the job's exit status.
    @Test func outputFilesWithSlurmsPatterns() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2])
        defer { cluster.stop() }
        let work = cluster.dir + "/out"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let job = "echo hello; echo oops >&2; exit 3"
        let split = try await cluster.submit(["--gpus", "0", "--name", "a/b", "-o", "o-%j-%x-%N-%t.log", "-e", "e-%j.log", job], cwd: work)
        let merged = try await cluster.submit(["--gpus", "0", "--output", "m-%j.log", job], cwd: work)
        let kept = try await cluster.submit(["--gpus", "0", "--output", "k-%j.log", "--error", "ke-%j.log", "--keep-logs", job], cwd: work)
        let array = try await cluster.submit(["--gpus", "0", "--array", "1-2", "--output", "\(work)/arr-%A_%a.log", "echo task $MGPU_ARRAY_TASK_ID"])
        for id in [split, merged, kept] { #expect(try await cluster.waitForState(id, [.failed]).exit?.code == 3, "the command's status") }
        for i in 1...2 { try await cluster.waitForState(JobID(parent: array, index: i), [.completed]) }
        func read(_ name: String) -> String? { try? String(contentsOfFile: "\(work)/\(name)", encoding: .utf8) }
        #expect(read("o-\(split)-a_b-node001-0.log") == "hello\n" && read("e-\(split).log") == "oops\n")
        #expect(read("m-\(merged).log") == "hello\noops\n", "without --error, stderr goes with stdout")
        #expect(read("k-\(kept).log") == "hello\n" && read("ke-\(kept).log") == "oops\n")
        #expect(read("arr-\(array)_1.log") == "task 1\n" && read("arr-\(array)_2.log") == "task 2\n")
        let none = try await cluster.mgpu(["logs", split.rawValue])
        #expect(none.stdout.isEmpty && !none.stderr.contains("oops"), "the master has nothing without --keep-logs")
        let logs = try await cluster.mgpu(["logs", kept.rawValue])
        #expect(logs.stdout == "hello\n" && logs.stderr.contains("oops"), "\(logs.stdout) | \(logs.stderr)")
        let interactive = try await cluster.mgpu(["srun", "--output", "x.log", "true"])
        #expect(interactive.status != 0 && interactive.stderr.contains("--output and --error are for batch jobs"), "\(interactive.stderr)")
        let stray = try await cluster.mgpu(["submit", "--keep-logs", "true"])
        #expect(stray.status != 0 && stray.stderr.contains("--keep-logs goes with --output or --error"))
    }
}

extension EndToEndTests.BatchTests {
    /// An admin drains a node with a reason; `mgpu nodes` says DRAINED with the reason, who and when; a user may not
    /// drain; resume brings the waiting job to it.
    @Test func drainAndResumeANode() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let drain = try await cluster.mgpu(["admin", "node", "drain", "node001", "--reason", "swap GPU 0"])
        #expect(drain.status == 0 && drain.stdout.contains("Node node001 DRAINED: no new jobs go there"), "\(drain.stdout) \(drain.stderr)")
        let job = try await cluster.submit(["true"])
        let nodes = try await cluster.mgpu(["nodes"])
        #expect(nodes.stdout.contains("DRAINED") && nodes.stdout.contains("node001 DRAINED: swap GPU 0 (by "), "\(nodes.stdout)")
        #expect(try await cluster.job(job).state == .pending)
        let nobody = try await cluster.mgpu(["admin", "user", "add", "nobody"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let denied = try await cluster.mgpu(["admin", "node", "resume", "node001"], env: ["MGPU_TOKEN": nobody])
        #expect(denied.status != 0 && denied.stderr.contains("only an admin can resume nodes"), "\(denied.stderr)")
        let unknown = try await cluster.mgpu(["admin", "node", "drain", "node009"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no node node009"))
        let resume = try await cluster.mgpu(["admin", "node", "resume", "node001"])
        #expect(resume.status == 0 && resume.stdout.contains("Node node001 takes jobs again"))
        #expect(try await cluster.waitForState(job, [.completed]).state == .completed)
    }
}

extension EndToEndTests.BatchTests {
    /// `mgpu master --config FILE`: [master] keys and [policy]'s times are the master's flags, a flag on the command
    /// line wins over the file; a key it does not know is one line with the file, line and a did-you-mean.
    @Test func aConfigFileSetsTheMastersFlags() async throws {
        let scratch = try TestCluster(name: "config")
        defer { scratch.stop() }
        let config = scratch.dir + "/mgpu.toml"
        try "# the lab's master\n[master]\nkeep_ended = 120\n\n[policy]\ndefault_time = \"0:30\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let fromFile = try await TestCluster.start(agents: ["node001": 1], master: ["--config", config], name: "fromFile")
        let id = try await fromFile.submit(["true"])
        #expect(try await fromFile.job(id).timeLimit == 30, "the file's default_time")
        fromFile.stop()
        let flagWins = try await TestCluster.start(agents: ["node001": 1], master: ["--config", config, "--default-time", "0:40"], name: "flagWins")
        let other = try await flagWins.submit(["true"])
        #expect(try await flagWins.job(other).timeLimit == 40, "the command line's")
        flagWins.stop()

        // Where each value comes from.
        try "[master]\nnode_timeout = 45\nkeep_ended = 60\n".write(toFile: config, atomically: true, encoding: .utf8)
        let show = try await scratch.mgpu(["config", "show", "master", "--config", config, "--", "--keep-ended", "90"])
        let rows = show.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.contains(["keep_ended", "90", "flag"]) && rows.contains(["node_timeout", "45", "file", config])
                && rows.contains(["port", "8080", "default"]), "\(show.stdout) \(show.stderr)")

        try "[master]\nnode_timout = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try await scratch.mgpu(["master", "--config", config])
        #expect(bad.status == 2 && bad.stderr == "mgpu: mgpu.toml:2: unknown key \"node_timout\" in [master] (did you mean node_timeout?)\n", "\(bad.stderr)")
        try "[node]\nreport_interval = \"soon\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let badValue = try await scratch.mgpu(["node", "--config", config])
        #expect(badValue.status != 0 && badValue.stderr.contains("report-interval") && !badValue.stderr.contains("Stack"), "\(badValue.stderr)")
        try "[nodes]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let badSection = try await scratch.mgpu(["up", "--config", config])
        #expect(badSection.status == 2 && badSection.stderr.contains("unknown section \"nodes\" (did you mean [node]?)"), "\(badSection.stderr)")
    }
}

extension EndToEndTests.BatchTests {
    /// SIGHUP: the master reads its config file's [policy] again, without a restart; a flag keeps its value; a file
    /// that no longer reads changes nothing and the master goes on.
    @Test func sighupReloadsThePolicy() async throws {
        let scratch = try TestCluster(name: "hup")
        defer { scratch.stop() }
        let config = scratch.dir + "/mgpu.toml"
        try "[policy]\ndefault_time = \"0:30\"\nage_scale = \"2-00:00:00\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--config", config, "--age-scale", "1-00:00:00"], name: "hupMaster")
        defer { cluster.stop() }
        #expect(try await cluster.job(try await cluster.submit(["true"])).timeLimit == 30)
        try "[policy]\ndefault_time = \"0:50\"\nage_scale = \"3-00:00:00\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(cluster.masterPid, SIGHUP)
        try await waitUntil("the reloaded default time", timeout: 20) {
            try await cluster.job(try await cluster.submit(["true"])).timeLimit == 50
        }
        #expect(try await cluster.client.policyReport().policy.ageScale == 86_400, "--age-scale was a flag: it keeps its value")
        try "[policy]\ndefault_tme = \"0:10\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(cluster.masterPid, SIGHUP)
        try await Task.sleep(for: .milliseconds(300))  // nothing to wait for: a bad file changes nothing
        #expect(try await cluster.job(try await cluster.submit(["true"])).timeLimit == 50, "a file that does not read changes nothing")
        #expect(kill(cluster.masterPid, 0) == 0, "the master goes on")
    }
}
