/** Six-site demo: placeholder until the engine demo lands. */
console.log("net-perf engine demo")
