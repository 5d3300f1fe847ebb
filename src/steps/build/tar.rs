//! The bytes of a tar archive (POSIX ustar, with PAX extended headers for long names, long link
//! targets and large sizes), one header at a time, so that a caller can stream file contents
//! between headers without holding the archive. Pure: it formats headers and knows no files.

pub const BLOCK: usize = 512;

/// What one archive entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    File,
    Directory,
    Symlink,
}

/// The header blocks for one entry: a PAX header first when a field does not fit ustar.
pub fn header(
    path: &str,
    entry_type: EntryType,
    mode: u32,
    size: u64,
    modified_seconds: u64,
    link_target: Option<&str>,
) -> Vec<u8> {
    let name = match entry_type {
        EntryType::Directory if !path.ends_with('/') => format!("{path}/"),
        _ => path.to_owned(),
    };
    let mut pax_records = Vec::new();
    let name_fits = name.len() <= 100 && name.is_ascii();
    if !name_fits {
        pax_records.push(pax_record("path", &name));
    }
    let link = link_target.unwrap_or("");
    let link_fits = link.len() <= 100 && link.is_ascii();
    if !link_fits {
        pax_records.push(pax_record("linkpath", link));
    }
    // Eleven octal digits hold sizes below 8 GiB.
    let size_fits = size < 0o77777777777;
    if !size_fits {
        pax_records.push(pax_record("size", &size.to_string()));
    }
    let mut output = Vec::with_capacity(BLOCK * 3);
    if !pax_records.is_empty() {
        let body: Vec<u8> = pax_records.concat();
        let pax_name = format!("PaxHeaders/{}", truncate_ascii(&name, 80));
        output.extend(ustar_block(
            &pax_name,
            b'x',
            0o644,
            body.len() as u64,
            modified_seconds,
            "",
        ));
        output.extend_from_slice(&body);
        output.extend(std::iter::repeat_n(0u8, padding(body.len() as u64)));
    }
    let type_flag = match entry_type {
        EntryType::File => b'0',
        EntryType::Directory => b'5',
        EntryType::Symlink => b'2',
    };
    let header_size = if entry_type == EntryType::File && size_fits {
        size
    } else {
        0
    };
    output.extend(ustar_block(
        &truncate_ascii(&name, 100),
        type_flag,
        mode,
        header_size,
        modified_seconds,
        &truncate_ascii(link, 100),
    ));
    output
}

/// Zero bytes after `size` bytes of contents, up to the next block.
pub fn padding(size: u64) -> usize {
    let remainder = (size % BLOCK as u64) as usize;
    if remainder == 0 { 0 } else { BLOCK - remainder }
}

/// The two zero blocks that end an archive.
pub fn end_of_archive() -> Vec<u8> {
    vec![0u8; BLOCK * 2]
}

/// `"<length> key=value\n"`, where the length counts the whole record, itself included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = format!(" {key}={value}\n");
    let mut length = rest.len() + 1;
    while (length.to_string().len() + rest.len()) != length {
        length = length.to_string().len() + rest.len();
    }
    format!("{length}{rest}").into_bytes()
}

fn truncate_ascii(text: &str, limit: usize) -> String {
    text.chars()
        .map(|character| if character.is_ascii() { character } else { '_' })
        .take(limit)
        .collect()
}

fn ustar_block(
    name: &str,
    type_flag: u8,
    mode: u32,
    size: u64,
    modified_seconds: u64,
    link_target: &str,
) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    put(&mut block[0..100], name.as_bytes());
    put_octal(&mut block[100..108], u64::from(mode & 0o7777));
    put_octal(&mut block[108..116], 0);
    put_octal(&mut block[116..124], 0);
    put_octal(&mut block[124..136], size);
    put_octal(&mut block[136..148], modified_seconds.min(0o77777777777));
    block[148..156].fill(b' ');
    block[156] = type_flag;
    put(&mut block[157..257], link_target.as_bytes());
    put(&mut block[257..263], b"ustar\0");
    put(&mut block[263..265], b"00");
    put(&mut block[265..269], b"root");
    put(&mut block[297..301], b"root");
    let checksum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    put(
        &mut block[148..156],
        format!("{checksum:06o}\0 ").as_bytes(),
    );
    block
}

fn put(field: &mut [u8], value: &[u8]) {
    let length = value.len().min(field.len());
    field[..length].copy_from_slice(&value[..length]);
}

/// Zero-padded octal with a terminating NUL, filling the field.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    put(field, text.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_file_header_is_one_block_with_a_valid_checksum() {
        let block = header("a/b.txt", EntryType::File, 0o644, 5, 0, None);
        assert_eq!(block.len(), BLOCK);
        assert_eq!(&block[0..7], b"a/b.txt");
        assert_eq!(&block[124..135], b"00000000005");
        let stored = std::str::from_utf8(&block[148..154]).unwrap();
        let mut copy = block.clone();
        copy[148..156].fill(b' ');
        let sum: u32 = copy.iter().map(|byte| u32::from(*byte)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }

    #[test]
    fn a_long_path_gets_a_pax_header_first() {
        let long_path = format!("{}/file.txt", "d".repeat(150));
        let blocks = header(&long_path, EntryType::File, 0o644, 1, 0, None);
        assert_eq!(blocks.len(), BLOCK * 3);
        assert_eq!(blocks[156], b'x');
        let body = String::from_utf8_lossy(&blocks[BLOCK..BLOCK * 2]);
        let record = body.trim_end_matches('\0');
        let (length, rest) = record.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), record.len());
        assert_eq!(rest, format!("path={long_path}\n"));
    }

    #[test]
    fn padding_rounds_up_to_the_block() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
