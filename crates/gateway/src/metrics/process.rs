//! The process's own metrics under the names every Prometheus client library uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, …), read from the kernel at each scrape: `getrusage` and `getrlimit`,
//! and `/proc/self` on Linux (elsewhere the `/proc` ones are left out). Written here rather
//! than with the `prometheus` crate's `process` feature, which brings `procfs` and its
//! dependencies into the production build for these few numbers.

use std::sync::LazyLock;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, IntGauge, Opts};

/// When the gateway set up its metrics, at start-up: the process's start for any purpose
/// the metric serves (telling restarts apart).
static STARTED: LazyLock<i64> = LazyLock::new(|| prehod_identity::unix_now() as i64);

pub struct ProcessCollector {
    descs: Vec<Desc>,
    cpu: Counter,
    open_fds: IntGauge,
    max_fds: IntGauge,
    virtual_memory: IntGauge,
    resident_memory: IntGauge,
    threads: IntGauge,
    start_time: IntGauge,
}

impl ProcessCollector {
    pub fn new() -> Result<Self, prometheus::Error> {
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds",
        ))?;
        let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help));
        let open_fds = gauge("process_open_fds", "Open file descriptors")?;
        let max_fds = gauge(
            "process_max_fds",
            "The limit of open file descriptors (RLIMIT_NOFILE, soft)",
        )?;
        let virtual_memory = gauge("process_virtual_memory_bytes", "Virtual memory size")?;
        let resident_memory = gauge("process_resident_memory_bytes", "Resident memory size")?;
        let threads = gauge("process_threads", "OS threads of the process")?;
        let start_time = gauge(
            "process_start_time_seconds",
            "When the process started (unix seconds)",
        )?;
        start_time.set(*STARTED);
        let mut descs = Vec::new();
        descs.extend(cpu.desc().into_iter().cloned());
        for g in [
            &open_fds,
            &max_fds,
            &virtual_memory,
            &resident_memory,
            &threads,
            &start_time,
        ] {
            descs.extend(g.desc().into_iter().cloned());
        }
        Ok(Self {
            descs,
            cpu,
            open_fds,
            max_fds,
            virtual_memory,
            resident_memory,
            threads,
            start_time,
        })
    }

    /// Reads the kernel's numbers into the metrics. A number that cannot be read keeps its
    /// last value (a scrape never fails for it).
    fn update(&self) {
        use nix::sys::resource::{getrlimit, getrusage, Resource, UsageWho};
        if let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) {
            let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            let total = seconds(usage.user_time()) + seconds(usage.system_time());
            let counted = self.cpu.get();
            if total > counted {
                self.cpu.inc_by(total - counted);
            }
        }
        if let Ok((soft, _hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // Less the descriptor this listing holds open itself.
            let open = dir.count().saturating_sub(1);
            self.open_fds.set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let status = Status::parse(&status);
            if let Some(kb) = status.vm_size_kb {
                self.virtual_memory.set(kb.saturating_mul(1024));
            }
            if let Some(kb) = status.vm_rss_kb {
                self.resident_memory.set(kb.saturating_mul(1024));
            }
            if let Some(n) = status.threads {
                self.threads.set(n);
            }
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.update();
        let mut families = self.cpu.collect();
        for g in [
            &self.open_fds,
            &self.max_fds,
            &self.virtual_memory,
            &self.resident_memory,
            &self.threads,
            &self.start_time,
        ] {
            families.extend(g.collect());
        }
        families
    }
}

/// The lines of `/proc/self/status` the metrics need.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    vm_size_kb: Option<i64>,
    vm_rss_kb: Option<i64>,
    threads: Option<i64>,
}

impl Status {
    fn parse(text: &str) -> Self {
        let mut status = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            // "  123456 kB" or "17"
            let number = value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok());
            match key {
                "VmSize" => status.vm_size_kb = number,
                "VmRSS" => status.vm_rss_kb = number,
                "Threads" => status.threads = number,
                _ => {}
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_by_name() {
        let text = "Name:\tprehod\nVmPeak:\t  999 kB\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\nThreads:\t17\nbroken line\nVmRSS2:\tx\n";
        assert_eq!(
            Status::parse(text),
            Status {
                vm_size_kb: Some(204_800),
                vm_rss_kb: Some(10_240),
                threads: Some(17),
            }
        );
        assert_eq!(Status::parse("VmRSS:\tnot a number kB"), Status::default());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_reports_its_files_against_their_limit() {
        let collector = ProcessCollector::new().expect("collector");
        let before = {
            collector.update();
            collector.open_fds.get()
        };
        // Ten more files open: the count follows.
        let held: Vec<std::fs::File> = (0..10)
            .map(|_| std::fs::File::open("/proc/self/status").expect("open"))
            .collect();
        collector.update();
        // Other tests of this process open and close files meanwhile: at least ten more.
        assert!(
            collector.open_fds.get() >= before + 10 - 2,
            "{before} → {}",
            collector.open_fds.get()
        );
        drop(held);
        assert!(collector.max_fds.get() >= 64, "{}", collector.max_fds.get());
        assert!(collector.resident_memory.get() > 1024 * 1024);
        assert!(collector.threads.get() >= 1);
        let families = collector.collect();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_virtual_memory_bytes",
                "process_resident_memory_bytes",
                "process_threads",
                "process_start_time_seconds",
            ]
        );
    }
}
