// The floor of an HTTP image service in Node, for npm run bench:images: node:http and
// sharp, nothing else (no admission, sniffing, options schema, results, metrics). The
// bench starts it with the backend's own process tuning (allocator, libuv pool, V8 heap,
// libvips threads, no operation cache), so the CPU per image the backend spends beyond
// this is what Sluice adds, and what this spends beyond sharp in-process is what any
// Node HTTP front costs: the upload and the answer crossing a socket.
//   node dist/load-tests/images-floor-server.js --port N --sharp-concurrency N
import { createServer } from 'node:http';
import sharp from 'sharp';

const arg = (name: string): number => Number(process.argv[process.argv.indexOf(name) + 1]);
sharp.concurrency(arg('--sharp-concurrency'));
sharp.cache(false);

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const o = JSON.parse(String(req.headers['x-options'])) as { resize: { width: number }; format: 'webp' | 'jpeg'; quality: number };
    const pipe = sharp(Buffer.concat(chunks)).rotate().resize({ width: o.resize.width });
    (o.format === 'webp' ? pipe.webp({ quality: o.quality }) : pipe.jpeg({ quality: o.quality })).toBuffer().then((out) => {
      res.writeHead(200, { 'content-type': `image/${o.format}`, 'content-length': out.length });
      res.end(out);
    }, (err: Error) => { res.writeHead(500); res.end(err.message); });
  });
}).listen(arg('--port'), '127.0.0.1', () => process.stdout.write('listening\n'));
