/**
 * A multipart/form-data request body from the platform's own FormData, encoded by the
 * platform's Response. undici's `request` cannot send a FormData as its body on Node 24
 * (the package's FormData goes to the runtime's bundled undici, which fails with
 * "action is not a function"), so tests send the bytes with their content-type.
 */
export async function formBody(form: FormData): Promise<{ body: Buffer; headers: { 'content-type': string } }> {
  const encoded = new Response(form);
  return { body: Buffer.from(await encoded.arrayBuffer()), headers: { 'content-type': encoded.headers.get('content-type')! } };
}
